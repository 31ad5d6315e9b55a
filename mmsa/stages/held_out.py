"""The held-out stage: one dataset's validation and test predictions of every model and seed,
read against each seed's training molecules (:mod:`mmsa.train.held_out_analysis`), written as a table, a
summary (ensemble, calibration, applicability domain) and two figures for the report: the error
against the similarity to the training set, and (classification) the reliability diagram.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from mmsa.eval.calibration import expected_calibration_error, reliability_bins
from mmsa.models.training_reference import DOMAIN_COVERAGE
from mmsa.plan.datasets import dataset_spec
from mmsa.plan.model_paths import seed_of
from mmsa.runtime.figures import pyplot, save_figure
from mmsa.runtime.io import atomic_path, write_parquet
from mmsa.runtime.tables import MISSING, interval, number, p_value, signed, write_html_tables
from mmsa.stages.inputs import shard_files
from mmsa.train.held_out_analysis import (
    LABEL_SUFFIX,
    error_curve,
    held_out_table,
    seed_scores,
    seed_similarity,
    summary,
    task_names,
    with_scaled,
)

log = logging.getLogger(__name__)

ERROR_NAMES = {
    "classification": "squared error of the probability (Brier)",
    "regression": "absolute error",
}


HELD_OUT_TEXT = (
    "Per model, seed means on the test part: the metric of one seed model beside the out-of-bag "
    "seed ensemble's (members: the seed models averaged per test molecule, those that held it "
    "out), calibration before and after temperature scaling fitted on validation "
    "(classification), the share of test molecules outside the applicability domain and the "
    "metric inside and outside it. Differences are paired over seeds, with their 95% interval "
    "and t-test p."
)
# the grid's columns: three that name the row, then the numbers (right-aligned)
HELD_OUT_NAMES = ("dataset", "model", "metric")
HELD_OUT_NUMBERS = (
    "per seed",
    "ensemble (members)",
    "ensemble − per seed",
    "ECE",
    "ECE, T-scaled",
    "Brier",
    "Brier, T-scaled",
    "out of domain",
    "inside",
    "outside",
    "inside − outside",
)


def _interval(row: pd.Series, name: str) -> str:
    """A paired difference of the summary with its interval and p, or nothing without pairs."""
    if not row[f"{name}_pairs"] or pd.isna(row[name]):
        return MISSING
    spread = interval(row[f"{name}_low"], row[f"{name}_high"])
    return f"{signed(row[name])} {spread} p {p_value(row[f'{name}_p'])}"


def held_out_grid(summary: pd.DataFrame) -> pd.DataFrame:
    """The held-out summaries as people read them: per (dataset, model) the seed-mean metric
    beside the out-of-bag ensemble's (and the paired gain), calibration before and after
    temperature scaling (classification), and the metric inside and outside the domain."""
    rows = [
        [
            row["dataset"],
            row["model"],
            row["metric_name"],
            number(row["metric"]),
            f"{number(row['ensemble'])} ({row['members']:.2f})",
            _interval(row, "ensemble_gain"),
            *(number(row.get(c, float("nan"))) for c in ("ece", "ece_scaled", "brier", "brier_scaled")),
            f"{row['out_of_domain']:.0%}",
            number(row["inside"]),
            number(row["outside"]),
            _interval(row, "domain_gap"),
        ]
        for _, row in summary.iterrows()
    ]
    return pd.DataFrame(rows, columns=[*HELD_OUT_NAMES, *HELD_OUT_NUMBERS])


def job_of(path: str | os.PathLike) -> tuple[str, int]:
    """(model, seed) of ``results/finetune/<dataset>/<model>/seed-<seed>.predictions.parquet``."""
    return Path(path).parent.name, seed_of(path)


def held_out(
    config: dict[str, Any],
    dataset: str,
    shards_dir: str | os.PathLike,
    manifests: Sequence[str | os.PathLike],
    splits: str | os.PathLike,
    predictions: Sequence[str | os.PathLike],
    table_path: str | os.PathLike,
    summary_path: str | os.PathLike,
    curve_path: str | os.PathLike,
    plot_path: str | os.PathLike,
    page_path: str | os.PathLike,
) -> pd.DataFrame:
    """Write the held-out table (Parquet), the per-model summary (CSV, and as a page for the
    report), the error curve (CSV) and its plot; return the summary."""
    from mmsa.data.labelled_molecules import load_labelled

    task_type = dataset_spec(config, dataset).task_type
    frame = load_labelled(shard_files(shards_dir), manifests)
    similarity = seed_similarity(frame, pd.read_parquet(splits), config["finetune"]["seeds"])
    table = held_out_table(frame, similarity, {job_of(p): pd.read_parquet(p) for p in predictions})
    write_parquet(pa.Table.from_pandas(table, preserve_index=False), table_path)
    result = summary(seed_scores(table, task_type), dataset, task_type)
    with atomic_path(summary_path) as tmp:
        result.to_csv(tmp, index=False, float_format="%.6g")
    title = f"{dataset}: ensemble, calibration and applicability domain"
    sections = [("Test part", HELD_OUT_TEXT, held_out_grid(result), HELD_OUT_NUMBERS)]
    write_html_tables(title, sections, page_path)
    curve = error_curve(table, task_type)
    with atomic_path(curve_path) as tmp:
        curve.to_csv(tmp, index=False, float_format="%.6g")
    plot_error_curve(curve, similarity, dataset, task_type, plot_path)
    log.info("%s held out:\n%s", dataset, result.to_string(index=False))
    return result


def plot_error_curve(
    curve: pd.DataFrame, similarity: pd.DataFrame, dataset: str, task_type: str, path: str | os.PathLike
) -> None:
    """Mean error per similarity bin, one colour per model, solid test and dashed validation,
    with the seeds' domain thresholds as dotted lines."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5.6, 3.8))
    for i, (model, part) in enumerate(curve.groupby("model", sort=False)):
        colour = f"C{i}"
        for name, style in (("test", "-o"), ("valid", "--s")):
            line = part[part["part"] == name]
            ax.plot(line["similarity"], line["error"], style, color=colour, label=f"{model} ({name})", ms=4)
    for threshold in sorted(set(similarity["threshold"])):
        ax.axvline(threshold, color="grey", ls=":", lw=1)
    ax.set_xlabel("largest ECFP4 Tanimoto similarity to the training molecules")
    ax.set_ylabel(f"mean {ERROR_NAMES[task_type]}")
    ax.set_title(
        f"{dataset}: error against similarity"
        f" (dotted: domain thresholds, {DOMAIN_COVERAGE:.0%} of validation inside)",
        fontsize=8,
    )
    ax.legend(fontsize=7, ncol=2)
    save_figure(fig, path)


def reliability(table_path: str | os.PathLike, dataset: str, plot_path: str | os.PathLike) -> None:
    """The reliability diagram of the test predictions, seeds pooled, one panel per model: before
    and after temperature scaling (each seed's temperature fitted on its validation part)."""
    table = pd.read_parquet(table_path)
    tasks = task_names(table)
    labels = [t + LABEL_SUFFIX for t in tasks]
    after = with_scaled(table)
    models = list(dict.fromkeys(table["model"]))
    plt = pyplot()
    fig, axes = plt.subplots(1, len(models), figsize=(3.4 * len(models), 3.5), squeeze=False)
    for ax, model in zip(axes[0], models, strict=True):
        ax.plot([0, 1], [0, 1], color="grey", lw=1, ls=":")
        for name, source, style in (("before", table, "-o"), ("after", after, "--s")):
            test = source[(source["model"] == model) & (source["part"] == "test")]
            y, p = test[labels].to_numpy(dtype=np.float64), test[tasks].to_numpy(dtype=np.float64)
            bins = reliability_bins(y, p)
            ece = expected_calibration_error(y, p)
            label = f"{name}: ECE {ece:.3f}"
            ax.plot(bins["mean_probability"], bins["positive_share"], style, ms=4, label=label)
        ax.set_title(f"{dataset} {model}", fontsize=9)
        ax.set_xlabel("mean predicted probability")
        ax.set_ylabel("share positive")
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.legend(fontsize=7, title="temperature scaling", title_fontsize=7)
    save_figure(fig, plot_path)
