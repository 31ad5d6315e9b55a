"""Calibration measures against hand-computed values and a temperature known in advance."""

import numpy as np
import pytest

from mmsa.eval.calibration import (
    brier,
    expected_calibration_error,
    fit_temperature,
    reliability_bins,
    scaled,
)


def test_brier_averages_the_labelled_cells_only():
    y = np.array([0.0, 1.0, 1.0, np.nan])
    p = np.array([0.2, 0.6, 1.0, 0.5])
    assert brier(y, p) == pytest.approx((0.04 + 0.16 + 0.0) / 3)


def test_ece_weights_each_bin_gap_by_its_cells():
    y = np.array([0.0, 1.0, 1.0, 1.0])
    p = np.array([0.15, 0.15, 0.85, 0.85])
    # bin [0.1, 0.2): share 0.5 vs 0.15; bin [0.8, 0.9): share 1 vs 0.85; two cells each
    assert expected_calibration_error(y, p) == pytest.approx((0.35 * 2 + 0.15 * 2) / 4)


def test_a_calibrated_bin_has_no_error_and_a_probability_of_one_lands_in_the_last_bin():
    y = np.array([1.0, 0.0, 0.0, 0.0, 1.0])
    p = np.array([0.25, 0.25, 0.25, 0.25, 1.0])
    table = reliability_bins(y[:4], p[:4])
    assert expected_calibration_error(y[:4], p[:4]) == 0.0
    assert table["cells"].tolist() == [0, 0, 4, 0, 0, 0, 0, 0, 0, 0]
    assert reliability_bins(y, p)["cells"].iloc[-1] == 1


def test_fit_temperature_recovers_an_overconfidence_known_in_advance():
    rng = np.random.default_rng(0)
    z = rng.normal(0.0, 3.0, 20000)
    y = (rng.random(z.size) < 1 / (1 + np.exp(-z))).astype(float)
    overconfident = 1 / (1 + np.exp(-2.0 * z))  # logits twice the true ones
    t = fit_temperature(y, overconfident)
    assert t == pytest.approx(2.0, rel=0.1)
    after = scaled(overconfident, t)
    assert expected_calibration_error(y, after) < expected_calibration_error(y, overconfident) / 2
    assert (np.diff(after[np.argsort(overconfident)]) >= 0).all()  # the ranking is kept


def test_one_class_has_nothing_to_fit_and_shapes_must_agree():
    assert fit_temperature(np.ones(5), np.full(5, 0.3)) == 1.0
    with pytest.raises(ValueError, match="differ in shape"):
        brier(np.ones(3), np.ones(4))
