"""Evaluation: dataset splits, masked losses and metrics, and the ECFP4 + random forest baseline.

Finetuning and the baseline share these functions so that both are split, trained on labelled
entries only, and scored in the same way.
"""

from mmsa.eval.baselines import ecfp4, fit_predict_rf
from mmsa.eval.metrics import (
    TASK_TYPES,
    check_task_type,
    evaluate,
    masked_loss,
    mean_roc_auc,
    rmse,
    roc_auc_per_task,
)
from mmsa.eval.split import SPLIT_KINDS, make_split, random_split, scaffold_split

__all__ = [
    "SPLIT_KINDS",
    "TASK_TYPES",
    "check_task_type",
    "ecfp4",
    "evaluate",
    "fit_predict_rf",
    "make_split",
    "masked_loss",
    "mean_roc_auc",
    "random_split",
    "rmse",
    "roc_auc_per_task",
    "scaffold_split",
]
