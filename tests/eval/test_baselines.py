"""ECFP4 fingerprints and the per-task random forest baseline."""

import numpy as np
import pytest
from rdkit import Chem
from sklearn.metrics import roc_auc_score

from helpers import DRUG_LIKE, HU_FRACTIONS
from mmsa.eval.baselines import count_morgan, ecfp4, fit_predict_linear, fit_predict_rf, physchem_features
from mmsa.eval.splitters import scaffold_split


def _has_nitrogen(smiles: str) -> float:
    return float(any(atom.GetSymbol() == "N" for atom in Chem.MolFromSmiles(smiles).GetAtoms()))


def test_ecfp4_shape_dtype_and_identity() -> None:
    fps = ecfp4(["CCO", "OCC", "c1ccccc1O", "CCO"])
    assert fps.shape == (4, 2048)
    assert fps.dtype == np.uint8
    assert set(np.unique(fps)) <= {0, 1}
    assert np.array_equal(fps[0], fps[1])  # same molecule written differently
    assert np.array_equal(fps[0], fps[3])
    assert not np.array_equal(fps[0], fps[2])
    assert ecfp4(["CCO"], n_bits=512).shape == (1, 512)


def test_ecfp4_names_the_unparsable_molecule() -> None:
    with pytest.raises(ValueError, match=r"molecule 2 \('c1cccc1'\)"):
        ecfp4(["CCO", "CCN", "c1cccc1"])


def test_random_forest_learns_nitrogen_on_unseen_scaffolds() -> None:
    X = ecfp4(DRUG_LIKE)
    y = np.array([_has_nitrogen(s) for s in DRUG_LIKE])
    train, valid, test = scaffold_split(DRUG_LIKE, HU_FRACTIONS)
    held_out = np.concatenate([valid, test])
    assert len(np.unique(y[held_out])) == 2
    # Task 1 hides a quarter of the training labels: its forest must train on the rest only.
    Y_train = np.stack([y[train], y[train]], axis=1)
    Y_train[::4, 1] = np.nan
    pred = fit_predict_rf(X[train], Y_train, X[held_out], "classification", 0, n_estimators=100)
    assert pred.shape == (len(held_out), 2)
    assert np.all((pred >= 0) & (pred <= 1))
    for task in range(2):
        assert roc_auc_score(y[held_out], pred[:, task]) > 0.8


def test_random_forest_is_deterministic_per_seed() -> None:
    X = ecfp4(DRUG_LIKE)
    Y = np.array([[_has_nitrogen(s)] for s in DRUG_LIKE])
    Y[1::5] = np.nan
    runs = [
        fit_predict_rf(X[:80], Y[:80], X[80:], "classification", seed=s, n_estimators=20, n_jobs=j)
        for s, j in ((1, 1), (1, 2), (2, 1))
    ]
    assert np.array_equal(runs[0], runs[1])
    assert not np.array_equal(runs[0], runs[2])


def test_single_class_task_predicts_that_class() -> None:
    X = ecfp4(DRUG_LIKE[:20])
    Y = np.array([[1.0, 0.0]] * 10, dtype=float)
    Y[3, 0] = np.nan
    pred = fit_predict_rf(X[:10], Y, X[10:], "classification", seed=0, n_estimators=5)
    assert np.array_equal(pred, np.tile([1.0, 0.0], (10, 1)))


def test_random_forest_regression_beats_the_mean() -> None:
    X = ecfp4(DRUG_LIKE)
    y = np.array([Chem.MolFromSmiles(s).GetNumHeavyAtoms() for s in DRUG_LIKE], dtype=float)
    train, _, test = scaffold_split(DRUG_LIKE, HU_FRACTIONS)
    pred = fit_predict_rf(X[train], y[train], X[test], "regression", seed=0, n_estimators=50)
    assert pred.shape == (len(test), 1)
    rf_error = np.sqrt(np.mean((pred[:, 0] - y[test]) ** 2))
    mean_error = np.sqrt(np.mean((y[train].mean() - y[test]) ** 2))
    assert rf_error < mean_error


def test_task_without_training_labels_gets_an_uninformative_constant() -> None:
    X = ecfp4(DRUG_LIKE[:6])
    unlabelled_task = np.array([[0, np.nan], [1, np.nan]] * 3)
    pred = fit_predict_rf(X, unlabelled_task, X, "classification", seed=0, n_estimators=5)
    assert (pred[:, 1] == 0.5).all()
    assert not (pred[:, 0] == 0.5).all()


def test_random_forest_rejects_unusable_labels() -> None:
    X = ecfp4(DRUG_LIKE[:6])
    with pytest.raises(ValueError, match="task 0: classification labels must be 0 or 1"):
        fit_predict_rf(X, np.array([0.0, 2.0] * 3), X, "classification", seed=0, n_estimators=5)


def test_linear_probe_learns_nitrogen_and_picks_its_strength_on_validation() -> None:
    X = ecfp4(DRUG_LIKE).astype(np.float64)
    y = np.array([_has_nitrogen(s) for s in DRUG_LIKE])
    train, valid, test = scaffold_split(DRUG_LIKE, (0.6, 0.2, 0.2))
    Y = np.stack([y, y], axis=1)
    Y[train[::3], 1] = np.nan  # task 1: a third of its training labels missing
    pred_valid, pred_test = fit_predict_linear(
        X[train], Y[train], X[valid], Y[valid], X[test], "classification"
    )
    assert pred_valid.shape == (len(valid), 2) and pred_test.shape == (len(test), 2)
    for task in range(2):
        assert roc_auc_score(y[test], pred_test[:, task]) > 0.8
    _, again = fit_predict_linear(X[train], Y[train], X[valid], Y[valid], X[test], "classification")
    assert np.array_equal(again, pred_test)  # deterministic
    # inverted validation labels make the worst strength look best: the choice follows validation
    _, inverted = fit_predict_linear(X[train], Y[train], X[valid], 1 - Y[valid], X[test], "classification")
    assert not np.allclose(inverted, pred_test)


def test_linear_probe_regression_beats_the_mean() -> None:
    X = ecfp4(DRUG_LIKE).astype(np.float64)
    y = np.array([Chem.MolFromSmiles(s).GetNumHeavyAtoms() for s in DRUG_LIKE], dtype=float)
    train, valid, test = scaffold_split(DRUG_LIKE, (0.6, 0.2, 0.2))
    _, pred = fit_predict_linear(X[train], y[train, None], X[valid], y[valid, None], X[test], "regression")
    rmse = np.sqrt(np.mean((pred[:, 0] - y[test]) ** 2))
    assert rmse < np.sqrt(np.mean((y[train].mean() - y[test]) ** 2))


def test_count_morgan_counts_repeated_environments_where_ecfp_sets_a_bit():
    counts, bits = count_morgan(["CCCC"]), ecfp4(["CCCC"])
    # butane is symmetric: four environments occur twice (CH3 and CH2 at radius 0 and 1), one once
    assert counts.dtype == np.float32 and counts.shape == (1, 2048)
    assert sorted(counts[0][counts[0] > 0].tolist()) == [1.0, 2.0, 2.0, 2.0, 2.0]
    assert ((counts > 0) == (bits > 0)).all() and bits.max() == 1


def test_physchem_features_read_a_failed_descriptor_as_zero_and_cap_huge_values():
    descriptors = np.array([[np.nan, 3e40, -2.5], [1.0, -7e9, 0.5]])
    x = physchem_features(["CCO", "c1ccccc1"], descriptors)
    assert x.shape == (2, 2048 + 3) and x.dtype == np.float32
    np.testing.assert_array_equal(x[:, 2048:], [[0.0, 1e6, -2.5], [1.0, -1e6, 0.5]])
    np.testing.assert_array_equal(x[:, :2048], count_morgan(["CCO", "c1ccccc1"]))
    with pytest.raises(ValueError, match="2 molecules but 1 rows of descriptors"):
        physchem_features(["CCO", "CC"], descriptors[:1])
