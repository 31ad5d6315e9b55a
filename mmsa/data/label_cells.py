"""Label transforms: turn a dataset's raw label cells into floats (NaN = missing label).

A cell that is neither empty nor convertible raises :class:`LabelError`; the row then goes to
the rejects table with that message instead of silently becoming a missing label. So does a
present label other than 0 or 1 in a classification task (see :func:`label_reader`).
"""

from __future__ import annotations

import math
from collections.abc import Callable


class LabelError(ValueError):
    """A label cell that cannot be read."""


def _is_missing(cell: object) -> bool:
    if cell is None:
        return True
    if isinstance(cell, float) and math.isnan(cell):
        return True
    return isinstance(cell, str) and cell.strip() == ""


def to_float(cell: object) -> float:
    """Numeric labels; empty cells are missing."""
    if _is_missing(cell):
        return math.nan
    try:
        value = float(cell)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise LabelError(f"label {cell!r} is not a number") from None
    if math.isinf(value):
        raise LabelError(f"label {cell!r} is infinite")
    return value


def hiv_active(cell: object) -> float:
    """HIV screen outcome: confirmed (CM) or moderately (CA) active = 1, inactive (CI) = 0."""
    if _is_missing(cell):
        return math.nan
    text = str(cell).strip().upper()
    if text in ("CM", "CA"):
        return 1.0
    if text == "CI":
        return 0.0
    raise LabelError(f"HIV outcome {cell!r} is none of CI, CM, CA")


LABEL_TRANSFORMS: dict[str, Callable[[object], float]] = {"float": to_float, "hiv_active": hiv_active}


BINARY_LABELS = (0.0, 1.0)  # every classification task is binary: BCE loss, ROC-AUC, P(label = 1)


def label_reader(name: str, task_type: str) -> Callable[[object], float]:
    """The transform ``name``, checked against the task type: a classification label that is
    present but neither 0 nor 1 (a 2, a -1, a 0.5) is a :class:`LabelError`, because the loss
    and the metrics would silently treat it as something else."""
    transform = get_transform(name)
    if task_type != "classification":
        return transform

    def binary(cell: object) -> float:
        value = transform(cell)
        if not math.isnan(value) and value not in BINARY_LABELS:
            raise LabelError(f"label {cell!r} is neither 0 nor 1 (binary classification task)")
        return value

    return binary


def get_transform(name: str) -> Callable[[object], float]:
    """The label transform called ``name``."""
    try:
        return LABEL_TRANSFORMS[name]
    except KeyError:
        raise ValueError(f"unknown label_transform {name!r}; use one of {sorted(LABEL_TRANSFORMS)}") from None
