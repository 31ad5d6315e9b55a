"""The held-out analysis on hand-built tables: ensemble members, domain sides, error bins."""

import numpy as np
import pandas as pd
import pytest

from mmsa.train.held_out_analysis import ensemble_predictions, error_curve, seed_scores


def table(rows: list[tuple]) -> pd.DataFrame:
    """Held-out rows (seed, part, row, similarity, in_domain, prediction, label) of model m."""
    columns = ["seed", "part", "row", "max_ecfp_tanimoto", "in_domain", "y", "y_label"]
    frame = pd.DataFrame(rows, columns=columns)
    frame.insert(0, "model", "m")
    frame["key"] = frame["row"].astype(str)
    frame["threshold"] = 0.5
    return frame


def test_the_ensemble_averages_only_the_seed_models_that_held_a_molecule_out():
    t = table(
        [
            (0, "test", 1, 0.9, True, 0.2, 0.0),
            (1, "test", 1, 0.9, True, 0.6, 0.0),
            (0, "test", 2, 0.9, True, 0.8, 1.0),
            (1, "valid", 2, 0.9, True, 0.1, 1.0),  # a validation prediction is no member
        ]
    )
    ens = ensemble_predictions(t).set_index("row")
    assert ens.loc[1, "y"] == pytest.approx(0.4) and ens.loc[1, "members"] == 2
    assert ens.loc[2, "y"] == pytest.approx(0.8) and ens.loc[2, "members"] == 1


def test_seed_scores_split_the_test_part_at_the_domain_flag():
    rows = [(0, "valid", i, 0.5, True, 0.5 + 0.1 * (i % 2), float(i % 2)) for i in range(10)]
    # inside: ranked perfectly; outside: ranked backwards; one of four out of the domain per class
    inside = [(0.1, 0), (0.2, 0), (0.3, 0), (0.7, 1), (0.8, 1), (0.9, 1)]
    rows += [(0, "test", 10 + i, 0.8, True, p, y) for i, (p, y) in enumerate(inside)]
    rows += [(0, "test", 20 + i, 0.1, False, p, y) for i, (p, y) in enumerate([(0.9, 0), (0.1, 1)])]
    s = seed_scores(table(rows), "classification").iloc[0]
    assert s["out_of_domain"] == pytest.approx(2 / 8)
    assert s["inside"] == 1.0 and s["outside"] == 0.0
    assert s["members"] == 1.0 and s["ensemble"] == s["metric"]
    assert s["brier"] == pytest.approx(np.mean([0.01, 0.04, 0.09, 0.09, 0.04, 0.01, 0.81, 0.81]))


def test_error_bins_come_from_validation_and_hold_every_test_molecule():
    valid = [(0, "valid", i, s, True, 0.5, 1.0) for i, s in enumerate(np.linspace(0.1, 1.0, 10))]
    test = [(0, "test", 100, 0.0, False, 0.25, 1.0), (0, "test", 101, 1.0, True, 1.0, 1.0)]
    curve = error_curve(table(valid + test), "classification", bins=5)
    test_curve = curve[curve["part"] == "test"].sort_values("bin")
    assert test_curve["molecules"].tolist() == [1, 1]  # below and above every validation value
    assert test_curve["error"].tolist() == [0.75**2, 0.0]  # squared error of the probability
    assert test_curve["bin"].tolist() == [0, 4]
    assert curve[curve["part"] == "valid"]["molecules"].sum() == 10
