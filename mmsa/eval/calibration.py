"""How far a classifier's probabilities can be taken at their word: Brier score, expected
calibration error, the reliability diagram's bins, and temperature scaling.

A chemist who reads "0.9 permeable" acts on the 0.9, so the report says whether 9 in 10 such
molecules were. Every function takes label and probability matrices (molecules x tasks, NaN
where a label is missing) and pools the labelled (molecule, task) cells, the way the metrics of
:mod:`mmsa.eval.metrics` mask them. Temperature scaling (Guo et al. 2017) divides every logit by
one temperature fitted on the validation part, so it changes how confident a model is, never the
order of its predictions (ROC-AUC is unchanged).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.optimize import minimize_scalar

BINS = 10  # equal-width probability bins of the ECE and the reliability diagram
EPS = 1e-6  # probabilities are clipped to [EPS, 1 - EPS] before taking logits (forests give 0 and 1)
LOG_TEMPERATURE_BOUND = 5.0  # the fitted temperature lies in [e^-5, e^5]


def labelled_cells(y: np.ndarray, p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The labelled cells of ``y`` and their probabilities, flattened (same shape required)."""
    y, p = np.asarray(y, dtype=np.float64), np.asarray(p, dtype=np.float64)
    if y.shape != p.shape:
        raise ValueError(f"labels {y.shape} and probabilities {p.shape} differ in shape")
    keep = ~np.isnan(y)
    return y[keep], p[keep]


def brier(y: np.ndarray, p: np.ndarray) -> float:
    """Mean squared difference of probability and 0/1 label over the labelled cells."""
    y, p = labelled_cells(y, p)
    return float(np.mean((p - y) ** 2)) if len(y) else float("nan")


def reliability_bins(y: np.ndarray, p: np.ndarray, bins: int = BINS) -> pd.DataFrame:
    """The reliability diagram's bins: ``low``, ``high``, ``cells``, ``mean_probability`` and
    ``positive_share`` (NaN in an empty bin). A probability of exactly 1 falls in the last bin."""
    y, p = labelled_cells(y, p)
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(p, edges[1:-1], right=False), 0, bins - 1)
    rows = []
    for b in range(bins):
        inside = which == b
        n = int(inside.sum())
        rows.append(
            {
                "low": edges[b],
                "high": edges[b + 1],
                "cells": n,
                "mean_probability": float(p[inside].mean()) if n else float("nan"),
                "positive_share": float(y[inside].mean()) if n else float("nan"),
            }
        )
    return pd.DataFrame(rows)


def expected_calibration_error(y: np.ndarray, p: np.ndarray, bins: int = BINS) -> float:
    """ECE: the cell-weighted mean over bins of |positive share - mean probability|."""
    table = reliability_bins(y, p, bins)
    filled = table[table["cells"] > 0]
    if filled.empty:
        return float("nan")
    gap = (filled["positive_share"] - filled["mean_probability"]).abs()
    return float((gap * filled["cells"]).sum() / filled["cells"].sum())


def logits(p: np.ndarray) -> np.ndarray:
    """log(p / (1 - p)) of probabilities clipped to [EPS, 1 - EPS]."""
    q = np.clip(np.asarray(p, dtype=np.float64), EPS, 1 - EPS)
    return np.log(q) - np.log1p(-q)


def scaled(p: np.ndarray, temperature: float) -> np.ndarray:
    """Probabilities with every logit divided by ``temperature`` (NaN stays NaN)."""
    return 1.0 / (1.0 + np.exp(-logits(p) / temperature))


def fit_temperature(y: np.ndarray, p: np.ndarray) -> float:
    """The temperature minimizing the negative log-likelihood of the labelled cells (fit it on
    validation predictions only); 1 where the cells hold one class or none (nothing to fit)."""
    y, p = labelled_cells(y, p)
    if len(np.unique(y)) < 2:
        return 1.0
    z = logits(p)

    def nll(log_t: float) -> float:
        s = z / np.exp(log_t)
        # -[y log sigmoid(s) + (1 - y) log sigmoid(-s)], written stably
        return float(np.mean(np.logaddexp(0.0, s) - y * s))

    fit = minimize_scalar(
        nll, bounds=(-LOG_TEMPERATURE_BOUND, LOG_TEMPERATURE_BOUND), method="bounded", options={"xatol": 1e-6}
    )
    return float(np.exp(fit.x))
