"""The rule a split's fractions follow, shared by the config check (before any job runs) and
the split code (:mod:`mmsa.eval.splitters`), so the two cannot disagree."""

from __future__ import annotations

import math
from collections.abc import Sequence

Fractions = tuple[float, float, float]


def check_fractions(frac: Sequence[float]) -> Fractions:
    """Three non-negative fractions (train, valid, test) summing to 1, as Hu et al. require."""
    if len(frac) != 3 or any(f < 0 for f in frac) or not math.isclose(sum(frac), 1.0):
        raise ValueError(f"frac must be three non-negative fractions summing to 1, got {frac!r}")
    return (float(frac[0]), float(frac[1]), float(frac[2]))
