"""Losses and scores for multi-task property prediction with missing labels.

MoleculeNet label matrices (Tox21, ToxCast, SIDER, ...) are sparse: a molecule is often tested
in only some assays. Missing labels are NaN here, and every function uses only the present
entries, so a missing label is never read as a negative. Classification is scored by ROC-AUC
averaged over tasks (tasks whose labelled test rows hold one class have no ROC-AUC and are left
out, as in Hu et al. 2019); regression by RMSE.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.metrics import roc_auc_score, root_mean_squared_error

from mmsa.data.registry import LABELLED_TASK_TYPES


@dataclass(frozen=True)
class Metric:
    """The headline metric of a task type and which way is better."""

    name: str
    higher_is_better: bool

    @property
    def arrow(self) -> str:
        """``↑`` or ``↓``, for table headers."""
        return "↑" if self.higher_is_better else "↓"

    @property
    def better(self) -> str:
        """``higher`` or ``lower``: which way is better, for axis labels."""
        return "higher" if self.higher_is_better else "lower"

    def is_better(self, value: float, best: float | None) -> bool:
        """Whether ``value`` beats ``best`` (None: nothing yet). NaN never beats a number."""
        if best is None or np.isnan(best):
            return best is None or not np.isnan(value)
        if np.isnan(value):
            return False
        return value > best if self.higher_is_better else value < best


METRICS = {"classification": Metric("roc_auc", True), "regression": Metric("rmse", False)}
TASK_TYPES = LABELLED_TASK_TYPES  # the task types a metric scores; METRICS has one for each


def check_task_type(task_type: str) -> str:
    """Return ``task_type`` if it is one evaluation knows how to score, else raise ValueError."""
    if task_type not in TASK_TYPES:
        raise ValueError(f"task_type {task_type!r} not in {TASK_TYPES}")
    return task_type


def _as_matrix(values: np.ndarray) -> np.ndarray:
    """Float [n, T] view of labels or predictions; a 1-D array is one task."""
    array = np.asarray(values, dtype=np.float64)
    return array.reshape(len(array), -1) if array.ndim == 1 else array


def _matching(y_true: np.ndarray, y_other: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    true, other = _as_matrix(y_true), _as_matrix(y_other)
    if true.shape != other.shape or true.ndim != 2:
        raise ValueError(f"labels {true.shape} and predictions {other.shape} must both be [n, T]")
    return true, other


def masked_loss(pred: torch.Tensor, target: torch.Tensor, task_type: str) -> torch.Tensor:
    """Mean loss over the present (non-NaN) entries of ``target``.

    Classification: binary cross-entropy on logits; regression: squared error. Entries whose
    label is missing contribute neither to the value nor to the gradient. A batch without any
    label gives a zero that is still attached to ``pred``, so training loops need no special case.
    """
    check_task_type(task_type)
    if pred.shape != target.shape:
        raise ValueError(f"pred {tuple(pred.shape)} and target {tuple(target.shape)} differ")
    present = ~torch.isnan(target)
    if not bool(present.any()):
        return pred.sum() * 0.0
    logits, labels = pred[present], target[present].to(pred.dtype)
    if task_type == "classification":
        return F.binary_cross_entropy_with_logits(logits, labels)
    return F.mse_loss(logits, labels)


def roc_auc_per_task(y_true: np.ndarray, y_score: np.ndarray) -> list[float | None]:
    """ROC-AUC of each task over its labelled rows; None where those rows hold a single class."""
    true, score = _matching(y_true, y_score)
    aucs: list[float | None] = []
    for t in range(true.shape[1]):
        labelled = ~np.isnan(true[:, t])
        labels = true[labelled, t]
        if np.unique(labels).size < 2:
            aucs.append(None)
        else:
            aucs.append(float(roc_auc_score(labels, score[labelled, t])))
    return aucs


def mean_roc_auc(y_true: np.ndarray, y_score: np.ndarray) -> float:
    """Mean ROC-AUC over the tasks that have both classes among their labelled rows."""
    aucs = [auc for auc in roc_auc_per_task(y_true, y_score) if auc is not None]
    if not aucs:
        raise ValueError("no task has both classes among its labelled rows; ROC-AUC is undefined")
    return float(np.mean(aucs))


def rmse(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Root mean squared error pooled over all present (non-NaN) entries of all tasks.

    Pooled rather than averaged per task because the regression sets MMSA is scored on (ESOL,
    FreeSolv, Lipophilicity) are single-task, where both agree; with several tasks, pooling
    weighs each measurement equally instead of letting a sparsely labelled task dominate.
    """
    true, pred = _matching(y_true, y_pred)
    present = ~np.isnan(true)
    if not present.any():
        raise ValueError("no present labels; RMSE is undefined")
    return float(root_mean_squared_error(true[present], pred[present]))


def metric_of(task_type: str) -> Metric:
    """The headline metric of ``task_type`` (ValueError for a type evaluation cannot score)."""
    return METRICS[check_task_type(task_type)]


def evaluate(y_true: np.ndarray, y_pred: np.ndarray, task_type: str) -> dict[str, object]:
    """The headline test metric of a task type, with which direction is better."""
    metric = metric_of(task_type)
    value = mean_roc_auc(y_true, y_pred) if metric.name == "roc_auc" else rmse(y_true, y_pred)
    return {"metric": metric.name, "value": value, "higher_is_better": metric.higher_is_better}


def metric_value(y_true: np.ndarray, y_pred: np.ndarray, task_type: str) -> float:
    """The headline metric, or NaN where it is undefined (e.g. no test task with both classes)."""
    try:
        return float(evaluate(y_true, y_pred, task_type)["value"])
    except ValueError:
        return float("nan")


def undefined_reason(y_true: np.ndarray, y_pred: np.ndarray, task_type: str) -> str | None:
    """Why the headline metric of ``y_pred`` is undefined, for the report to name; ``None`` when
    it is defined. Predictions that are not finite numbers (a training run that diverged) are
    told apart from labels that allow no metric (a test part of one class)."""
    try:
        evaluate(y_true, y_pred, task_type)
    except ValueError as err:
        true, pred = _matching(y_true, y_pred)
        if not np.isfinite(pred[~np.isnan(true)]).all():
            return "its predictions are not finite numbers (training diverged; a smaller lr?)"
        return str(err).split(";")[0]
    return None
