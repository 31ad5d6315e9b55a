"""The results table and plots: mean +/- std over seeds for every dataset and model."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from mmsa.io import atomic_path, write_text

MODEL_ORDER = ["mmsa", "mmsa-graph", "no-pretrain", "ecfp-rf"]


def collect(paths: Sequence[str | os.PathLike]) -> pd.DataFrame:
    """One row per finetuning job: dataset, model, seed, metric, valid, test, best_epoch."""
    rows = []
    for path in paths:
        result = json.loads(Path(path).read_text())
        rows.append(
            {
                k: result[k]
                for k in ("dataset", "model", "seed", "metric", "task_type", "valid", "test", "best_epoch")
            }
        )
    return pd.DataFrame(rows)


def summarize(jobs: pd.DataFrame) -> pd.DataFrame:
    """Mean and std of the test metric over seeds, per dataset and model."""
    grouped = jobs.groupby(["dataset", "model", "metric", "task_type"], sort=False)["test"]
    table = grouped.agg(mean="mean", std=lambda v: float(np.std(v, ddof=0)), seeds="count").reset_index()
    order = {m: i for i, m in enumerate(MODEL_ORDER)}
    return table.sort_values(
        ["task_type", "dataset", "model"], key=lambda c: c.map(order) if c.name == "model" else c
    ).reset_index(drop=True)


def _cell(mean: float, std: float) -> str:
    """``mean ± std``, or ``n/a`` where the metric is undefined (a single-class test split)."""
    return "n/a" if np.isnan(mean) else f"{mean:.3f} ± {std:.3f}"


def markdown(table: pd.DataFrame) -> str:
    """Datasets as rows, models as columns, ``mean ± std``; plus the classification average."""
    models = [m for m in MODEL_ORDER if m in set(table["model"])]
    lines = ["| dataset | metric | " + " | ".join(models) + " |", "|---|---|" + "---:|" * len(models)]
    for (dataset, metric), part in table.groupby(["dataset", "metric"], sort=False):
        cells = part.set_index("model")
        row = [_cell(cells.loc[m, "mean"], cells.loc[m, "std"]) if m in cells.index else "—" for m in models]
        arrow = "↑" if metric == "roc_auc" else "↓"
        lines.append(f"| {dataset} | {metric} {arrow} | " + " | ".join(row) + " |")
    cls = table[table["task_type"] == "classification"]
    if not cls.empty:
        means = cls.groupby("model")["mean"].mean()
        cells = [
            ("n/a" if np.isnan(means[m]) else f"{means[m]:.3f}") if m in means.index else "—" for m in models
        ]
        lines.append("| **average (classification)** | roc_auc ↑ | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def plot_bars(table: pd.DataFrame, path: str | os.PathLike) -> None:
    """Grouped bars with std error bars: one panel for ROC-AUC, one for RMSE."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    metrics = list(dict.fromkeys(table["metric"]))
    fig, axes = plt.subplots(1, len(metrics), figsize=(5.5 * len(metrics), 3.6), squeeze=False)
    models = [m for m in MODEL_ORDER if m in set(table["model"])]
    width = 0.8 / len(models)
    for ax, metric in zip(axes[0], metrics, strict=True):
        part = table[table["metric"] == metric]
        datasets = list(dict.fromkeys(part["dataset"]))
        for i, model in enumerate(models):
            sub = part[part["model"] == model].set_index("dataset").reindex(datasets)
            ax.bar(
                np.arange(len(datasets)) + i * width,
                sub["mean"],
                width,
                yerr=sub["std"],
                label=model,
                capsize=2,
            )
        ax.set_xticks(np.arange(len(datasets)) + width * (len(models) - 1) / 2, datasets, rotation=20)
        ax.set_ylabel(f"test {metric} ({'higher' if metric == 'roc_auc' else 'lower'} is better)")
        if metric == "roc_auc":
            ax.set_ylim(0.4, 1.0)
    axes[0][0].legend(fontsize=8)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)


def plot_curves(paths: Sequence[str | os.PathLike], path: str | os.PathLike) -> None:
    """Validation metric per epoch, averaged over seeds, one panel per dataset."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    curves: dict[tuple[str, str], list[list[float]]] = {}
    metric_of: dict[str, str] = {}
    for p in paths:
        result = json.loads(Path(p).read_text())
        if result["curve"]:
            curves.setdefault((result["dataset"], result["model"]), []).append(
                [c["valid"] for c in result["curve"]]
            )
            metric_of[result["dataset"]] = result["metric"]
    datasets = list(dict.fromkeys(d for d, _ in curves))
    fig, axes = plt.subplots(
        1, max(1, len(datasets)), figsize=(3.4 * max(1, len(datasets)), 3), squeeze=False
    )
    for ax, dataset in zip(axes[0], datasets, strict=False):
        for (d, model), runs in curves.items():
            if d == dataset:
                ax.plot(np.arange(1, len(runs[0]) + 1), np.nanmean(np.array(runs), axis=0), label=model)
        ax.set_title(dataset, fontsize=9)
        ax.set_xlabel("epoch")
        ax.set_ylabel(f"valid {metric_of[dataset]}")
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)


def write_report(
    paths: Sequence[str | os.PathLike],
    csv_path: str | os.PathLike,
    md_path: str | os.PathLike,
    bars_path: str | os.PathLike,
    curves_path: str | os.PathLike,
) -> pd.DataFrame:
    """Write the results table (CSV, Markdown) and both plots; return the table."""
    table = summarize(collect(paths))
    with atomic_path(csv_path) as tmp:
        table.to_csv(tmp, index=False, float_format="%.4f")
    write_text(markdown(table), md_path)
    plot_bars(table, bars_path)
    plot_curves(paths, curves_path)
    return table
