"""Classical models on fixed features: ECFP4 + random forest, the physchem forest, and the linear probe.

A pretrained model that cannot beat Morgan fingerprints with a random forest on the same split
has learned nothing useful for the task, so this baseline is scored beside every finetuning run.
The stronger bar is the forest chemists use: count Morgan fingerprints plus RDKit's 2D
descriptors (``rf-physchem``; CheMeleon's strongest classical reference, Burns et al. 2025).
The linear probe (a linear model on frozen embeddings) is the field's cheapest read-out of how
much a representation holds. Each task gets its own model trained on that task's labelled rows
only (NaN = missing), because MoleculeNet label matrices are sparse and a missing label is not
a negative.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np
from rdkit.Chem import rdFingerprintGenerator
from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from mmsa.data.standardized_molecules import RejectedMolecule, parse_molecule
from mmsa.eval.metrics import check_task_type, metric_of, metric_value

PROBE_STRENGTHS = (0.01, 0.1, 1.0, 10.0)  # inverse regularization (C) / ridge alpha = 1 / C
DESCRIPTOR_CLIP = 1e6  # |value| cap for the forest: a few descriptors (Ipc) span 1e30

log = logging.getLogger(__name__)


def _morgan(smiles: Sequence[str], n_bits: int, counts: bool) -> np.ndarray:
    """Morgan fingerprints (radius 2) of ``smiles``, [n, n_bits]: counts as float32, or bits as
    uint8 0/1."""
    generator = rdFingerprintGenerator.GetMorganGenerator(radius=2, fpSize=n_bits)
    rows = np.zeros((len(smiles), n_bits), dtype=np.float32 if counts else np.uint8)
    for i, smi in enumerate(smiles):
        try:
            mol = parse_molecule(smi)
        except RejectedMolecule as err:
            raise ValueError(f"molecule {i} ({smi!r}) cannot be parsed: {err}") from err
        rows[i] = (
            generator.GetCountFingerprintAsNumPy(mol) if counts else generator.GetFingerprintAsNumPy(mol)
        )
    return rows


def ecfp4(smiles: Sequence[str], n_bits: int = 2048) -> np.ndarray:
    """ECFP4 bit vectors (Morgan, radius 2) as a uint8 [n, n_bits] matrix of 0/1."""
    return _morgan(smiles, n_bits, counts=False)


def count_morgan(smiles: Sequence[str], n_bits: int = 2048) -> np.ndarray:
    """Count Morgan fingerprints (radius 2) as a float32 [n, n_bits] matrix of counts."""
    return _morgan(smiles, n_bits, counts=True)


def physchem_features(smiles: Sequence[str], descriptors: np.ndarray) -> np.ndarray:
    """The physchem forest's input: count Morgan fingerprints beside the raw descriptors (a
    failed descriptor, NaN, reads 0, which a tree can split off; values capped at
    :data:`DESCRIPTOR_CLIP`), float32 [n, n_bits + D]."""
    if len(descriptors) != len(smiles):
        raise ValueError(f"{len(smiles)} molecules but {len(descriptors)} rows of descriptors")
    values = np.clip(np.nan_to_num(descriptors, nan=0.0), -DESCRIPTOR_CLIP, DESCRIPTOR_CLIP)
    return np.hstack([count_morgan(smiles), values.astype(np.float32)])


def _fit_predict_task(
    X_train: np.ndarray,
    y: np.ndarray,
    X_test: np.ndarray,
    task_type: str,
    forest_args: dict[str, Any],
) -> np.ndarray:
    """Predictions of one task from a forest fitted on the rows where ``y`` is labelled."""
    labelled = ~np.isnan(y)
    if not labelled.any():
        # Sparse multi-task sets (ToxCast) can leave a task unlabelled in a training split:
        # predict an uninformative constant rather than fail the whole baseline.
        log.warning("a task has no labelled training rows; predicting a constant for it")
        return np.full(len(X_test), 0.5 if task_type == "classification" else np.nan)
    X, y = X_train[labelled], y[labelled]
    if task_type == "regression":
        return RandomForestRegressor(**forest_args).fit(X, y).predict(X_test)
    if not np.isin(y, (0.0, 1.0)).all():
        raise ValueError("classification labels must be 0 or 1 (or NaN for missing)")
    if np.unique(y).size == 1:
        # A forest fitted on one class has no P(class 1) column; the answer is that class.
        return np.full(len(X_test), y[0])
    return RandomForestClassifier(**forest_args).fit(X, y).predict_proba(X_test)[:, 1]


def fit_predict_rf(
    X_train: np.ndarray,
    Y_train: np.ndarray,
    X_test: np.ndarray,
    task_type: str,
    seed: int,
    n_estimators: int,
    n_jobs: int = 1,
    max_features: str | float | None = None,
) -> np.ndarray:
    """Fit one random forest per task and predict ``X_test``: a float [n_test, T] matrix.

    Classification predictions are P(label = 1), ready for ROC-AUC; regression predictions are
    values. ``random_state=seed`` makes the result identical for any ``n_jobs``. ``max_features``
    is scikit-learn's (None: its default, which differs between classifier and regressor).
    """
    check_task_type(task_type)
    Y = np.asarray(Y_train, dtype=np.float64)
    Y = Y.reshape(len(Y), -1) if Y.ndim == 1 else Y
    if len(Y) != len(X_train):
        raise ValueError(f"X_train has {len(X_train)} rows but Y_train has {len(Y)}")
    forest_args: dict[str, Any] = {"n_estimators": n_estimators, "random_state": seed, "n_jobs": n_jobs}
    if max_features is not None:
        forest_args["max_features"] = max_features
    columns = []
    for t in range(Y.shape[1]):
        try:
            columns.append(_fit_predict_task(X_train, Y[:, t], X_test, task_type, forest_args))
        except ValueError as err:
            raise ValueError(f"task {t}: {err}") from err
    return np.stack(columns, axis=1).astype(np.float64)


def _probe(task_type: str, strength: float):
    if task_type == "classification":
        return make_pipeline(StandardScaler(), LogisticRegression(C=strength, max_iter=2000))
    return make_pipeline(StandardScaler(), Ridge(alpha=1.0 / strength))


def fit_predict_linear(
    X_train: np.ndarray,
    Y_train: np.ndarray,
    X_valid: np.ndarray,
    Y_valid: np.ndarray,
    X_test: np.ndarray,
    task_type: str,
) -> tuple[np.ndarray, np.ndarray]:
    """Linear probe: per task, a standardized logistic (or ridge) regression whose strength is
    chosen from :data:`PROBE_STRENGTHS` by the task's validation metric; returns the validation
    and test predictions (P(label = 1) or values). Deterministic (no random state involved).
    """
    metric = metric_of(task_type)
    Y, Yv = np.asarray(Y_train, np.float64), np.asarray(Y_valid, np.float64)
    valid_cols, test_cols = [], []
    for t in range(Y.shape[1]):
        labelled = ~np.isnan(Y[:, t])
        y = Y[labelled, t]
        if not labelled.any() or (task_type == "classification" and np.unique(y).size < 2):
            constant = 0.5 if not labelled.any() else float(y[0])
            if task_type == "regression" and not labelled.any():
                constant = np.nan
            valid_cols.append(np.full(len(X_valid), constant))
            test_cols.append(np.full(len(X_test), constant))
            continue
        best = None
        for strength in PROBE_STRENGTHS:
            model = _probe(task_type, strength).fit(X_train[labelled], y)
            score = metric_value(Yv[:, t], _predict(model, X_valid, task_type), task_type)
            if best is None or metric.is_better(score, best[0]):
                best = (score, model)
        valid_cols.append(_predict(best[1], X_valid, task_type))
        test_cols.append(_predict(best[1], X_test, task_type))
    return np.stack(valid_cols, axis=1), np.stack(test_cols, axis=1)


def _predict(model, X: np.ndarray, task_type: str) -> np.ndarray:
    if task_type == "classification":
        return model.predict_proba(X)[:, 1]
    return model.predict(X)
