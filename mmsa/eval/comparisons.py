"""Finetuning results compared: every (dataset, model, seed) result collected, summarized over
seeds, and each model paired with each reference seed by seed.

Mean ± std cannot say whether one model beats another, so every model is paired with each
reference (``no-pretrain``, ``ecfp-rf``) seed by seed on the same splits: the mean difference,
its 95% t-interval and the paired t and Wilcoxon tests, with a verdict only where the interval
excludes 0. The report stage prints these; the transfer study and the power benchmark reuse them.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import ttest_1samp, wilcoxon

from mmsa.eval.metrics import METRICS
from mmsa.plan.compared_models import MODEL_NAMES, REFERENCES

JOB_FIELDS = ("dataset", "model", "seed", "metric", "task_type", "valid", "test", "test_last", "best_epoch")


BY_NAME = {m.name: m for m in METRICS.values()}  # results name their metric; its direction is here


AVERAGED = METRICS["classification"]  # the metric averaged over datasets (ROC-AUC, bounded)


CLASSIFICATION_AVERAGE = "average (classification)"  # the paired comparisons' name for it


CONFIDENCE = 0.95


# Below 6 pairs the exact two-sided signed-rank p-value cannot fall under 0.05 (its smallest
# value is 2 / 2**n, 0.0625 at n = 5), so the Wilcoxon test is left out there.
WILCOXON_MIN_PAIRS = 6


# comparisons.csv: the pair, the seeds paired and dropped, the statistics and the verdict
COMPARISON_COLUMNS = (
    "model",
    "reference",
    "dataset",
    "metric",
    "pairs",
    "dropped",
    "mean_difference",
    "ci_low",
    "ci_high",
    "t_test_p",
    "wilcoxon_p",
    "resolved",
    "verdict",
)


def collect(paths: Sequence[str | os.PathLike]) -> pd.DataFrame:
    """One row per (dataset, model, seed) result, with the commit and threads that produced it."""
    rows = []
    for path in paths:
        result = json.loads(Path(path).read_text())
        prov = result.get("provenance", {})
        rows.append(
            {
                **{k: result[k] for k in JOB_FIELDS},
                "test_undefined": result.get("test_undefined"),  # why test is NaN; absent before 33
                "commit": prov.get("commit"),
                "torch_threads": prov.get("torch_threads"),
            }
        )
    return pd.DataFrame(rows)


def summarize(jobs: pd.DataFrame, column: str = "test") -> pd.DataFrame:
    """Mean and (population) std of ``column`` over seeds, per dataset and model."""
    grouped = jobs.groupby(["dataset", "model", "metric", "task_type"], sort=False)[column]
    table = grouped.agg(mean="mean", std=lambda v: float(np.std(v, ddof=0)), seeds="count").reset_index()
    order = {m: i for i, m in enumerate(MODEL_NAMES)}
    return table.sort_values(
        ["task_type", "dataset", "model"], key=lambda c: c.map(order) if c.name == "model" else c
    ).reset_index(drop=True)


def paired_differences(
    jobs: pd.DataFrame, model: str, reference: str, column: str = "test"
) -> list[tuple[str, str, pd.Series]]:
    """``(dataset, metric, model - reference per seed)`` for every dataset both models ran on,
    then for the classification average (over two or more datasets). ``column`` is the score
    compared: ``test``, or ``valid`` where a setting is being chosen (test scores never choose).

    Seeds pair the two models on the same split. A seed where either metric is NaN (a
    single-class test part) or missing is NaN in the differences, for the caller to drop and
    count. The classification average is taken per seed over the classification datasets first
    (a seed with any NaN among them is NaN), then differenced. RMSE is compared per dataset only:
    each regression dataset has its own units, so their average has none.
    """
    scores = jobs.set_index(["dataset", "model", "seed"])[column].sort_index()
    out = []
    classification: list[str] = []
    for (dataset, metric, task_type), part in jobs.groupby(["dataset", "metric", "task_type"], sort=False):
        if {model, reference} <= set(part["model"]):
            diff = scores.loc[(dataset, model)].sub(scores.loc[(dataset, reference)])  # outer join on seed
            out.append((dataset, metric, diff))
            classification += [dataset] if task_type == "classification" else []
    if len(classification) > 1:
        per_seed = scores.loc[list(classification)].unstack("dataset")
        averages = per_seed.mean(axis=1, skipna=False)  # a seed missing a dataset is NaN
        diff = averages.loc[model].sub(averages.loc[reference])
        out.append((CLASSIFICATION_AVERAGE, AVERAGED.name, diff))
    return out


def paired_statistics(differences: np.ndarray) -> dict[str, Any]:
    """Mean of paired differences, its 95% t-interval, the two-sided paired t-test p-value and
    (from :data:`WILCOXON_MIN_PAIRS` pairs) the Wilcoxon signed-rank p-value; ``resolved`` only
    where the interval excludes 0. NaN where too few pairs or no spread leave a value undefined
    (equal differences: the interval is the point itself)."""
    d = np.asarray(differences, dtype=np.float64)
    nan = float("nan")
    mean = float(np.mean(d)) if len(d) else nan
    low, high, t_p, w_p = nan, nan, nan, nan
    if len(d) >= 2 and np.ptp(d) == 0:
        low = high = mean
    elif len(d) >= 2:
        test = ttest_1samp(d, 0.0)
        interval = test.confidence_interval(CONFIDENCE)
        low, high, t_p = float(interval.low), float(interval.high), float(test.pvalue)
    if len(d) >= WILCOXON_MIN_PAIRS and np.any(d != 0):
        w_p = float(wilcoxon(d).pvalue)
    return {
        "mean_difference": mean,
        "ci_low": low,
        "ci_high": high,
        "t_test_p": t_p,
        "wilcoxon_p": w_p,
        "resolved": bool(low > 0 or high < 0),  # NaN compares False: not resolved
    }


def comparisons(jobs: pd.DataFrame, column: str = "test") -> pd.DataFrame:
    """Every model's paired difference (model - reference, in the metric's units, on ``column``:
    ``test``, or ``valid`` for choosing a setting) to each
    reference of :data:`mmsa.plan.compared_models.REFERENCES` that ran, per dataset and on the
    classification average; one row per (model, reference, dataset). A pair of two references
    appears once, against the first-listed one. ``verdict`` names the better model by the
    metric's direction where the interval excludes 0, and says "not resolved" otherwise."""
    ran = [m for m in MODEL_NAMES if m in set(jobs["model"])]
    references = [r for r in REFERENCES if r in ran]
    rows = []
    for i, reference in enumerate(references):
        for model in ran:
            if model == reference or model in references[:i]:
                continue
            for dataset, metric, diff in paired_differences(jobs, model, reference, column):
                kept = diff.dropna().to_numpy()
                result = paired_statistics(kept)
                model_better = (result["mean_difference"] > 0) == BY_NAME[metric].higher_is_better
                better = model if model_better else reference
                rows.append(
                    {"model": model, "reference": reference, "dataset": dataset, "metric": metric}
                    | {"pairs": len(kept), "dropped": int(diff.isna().sum())}
                    | result
                    | {"verdict": f"{better} better" if result["resolved"] else "not resolved"}
                )
    return pd.DataFrame(rows, columns=list(COMPARISON_COLUMNS))
