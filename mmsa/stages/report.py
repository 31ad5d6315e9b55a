"""The report stage: the results table and plots, mean ± std over seeds for every dataset and model.

The headline table is the test metric at the epoch with the best validation metric; a second
table gives the last epoch's test metric for the finetuned networks (what Hu et al. report).
Beside it the paired comparisons to the references (:mod:`mmsa.eval.comparisons`,
``comparisons.csv``). The report names the code (commit) and torch threads that produced the
numbers and the settings that matter for comparing them with published ones.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mmsa.eval.comparisons import (
    AVERAGED,
    BY_NAME,
    CONFIDENCE,
    WILCOXON_MIN_PAIRS,
    collect,
    comparisons,
    summarize,
)
from mmsa.plan.compared_models import MODEL_NAMES, MODELS
from mmsa.runtime.figures import pyplot, save_figure
from mmsa.runtime.io import atomic_path, write_text

log = logging.getLogger(__name__)


def _cell(mean: float, std: float) -> str:
    """``mean ± std``, or ``n/a`` where the metric is undefined (a single-class test split)."""
    return "n/a" if np.isnan(mean) else f"{mean:.3f} ± {std:.3f}"


def markdown(table: pd.DataFrame) -> str:
    """Datasets as rows, models as columns, ``mean ± std``; plus the classification average."""
    models = [m for m in MODEL_NAMES if m in set(table["model"])]
    lines = ["| dataset | metric | " + " | ".join(models) + " |", "|---|---|" + "---:|" * len(models)]
    for (dataset, metric), part in table.groupby(["dataset", "metric"], sort=False):
        cells = part.set_index("model")
        row = [_cell(cells.loc[m, "mean"], cells.loc[m, "std"]) if m in cells.index else "—" for m in models]
        lines.append(f"| {dataset} | {metric} {BY_NAME[metric].arrow} | " + " | ".join(row) + " |")
    cls = table[table["task_type"] == "classification"]
    if not cls.empty:
        means = cls.groupby("model")["mean"].mean()
        cells = [
            ("n/a" if np.isnan(means[m]) else f"{means[m]:.3f}") if m in means.index else "—" for m in models
        ]
        head = f"| **average (classification)** | {AVERAGED.name} {AVERAGED.arrow} | "
        lines.append(head + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _signed(value: float) -> str:
    return "—" if np.isnan(value) else f"{value:+.3f}"


def _p(value: float) -> str:
    return "—" if np.isnan(value) else f"{value:.3f}" if value >= 0.001 else "<0.001"


def comparisons_markdown(table: pd.DataFrame) -> str:
    """The paired comparisons as a Markdown table, one row per (model, reference, dataset)."""
    lines = [
        "| model − reference | dataset | metric | seeds (dropped) | mean difference | "
        f"{CONFIDENCE:.0%} interval | paired t p | Wilcoxon p | verdict |",
        "|---|---|---|---:|---:|---|---:|---:|---|",
    ]
    for r in table.itertuples():
        lines.append(
            f"| {r.model} − {r.reference} | {r.dataset} | {r.metric} {BY_NAME[r.metric].arrow} | "
            f"{r.pairs}" + (f" ({r.dropped})" if r.dropped else "") + f" | {_signed(r.mean_difference)} | "
            f"[{_signed(r.ci_low)}, {_signed(r.ci_high)}] | {_p(r.t_test_p)} | {_p(r.wilcoxon_p)} | "
            f"{r.verdict} |"
        )
    return "\n".join(lines) + "\n"


def comparisons_section(table: pd.DataFrame, config: dict[str, Any] | None) -> str:
    """What the paired comparisons mean, and their table."""
    split = config["finetune"]["settings"]["split"] if config is not None else None
    scope = (
        " The deterministic scaffold split is one split: its seeds vary the initialization only, so "
        "these intervals say nothing about other splits (`finetune.settings.split: "
        "scaffold_balanced` draws one per seed)."
        if split == "scaffold"
        else ""
    )
    text = (
        "Each row pairs two models seed by seed on the same split: the mean of model − reference "
        f"(in the metric's units; its arrow says which way is better), its {CONFIDENCE:.0%} t-interval, the "
        "two-sided paired t-test and, from "
        f"{WILCOXON_MIN_PAIRS} seeds on, the Wilcoxon signed-rank test. A row is resolved only "
        "where the interval excludes 0, and then names the better model; an interval that "
        "contains 0 is **not resolved**: these seeds show no difference either way. Seeds where "
        "either metric is undefined (a single-class test part) are dropped from that pair and "
        "counted in brackets. The classification average is averaged over datasets per seed, then "
        "differenced; RMSE is compared per dataset only (each dataset has its own units). No "
        "correction for the number of comparisons." + scope + "\n"
    )
    return text + "\n" + comparisons_markdown(table)


def settings_summary(config: dict[str, Any]) -> str:
    """The settings a reader needs to compare these numbers with published ones."""
    pre, fine = config["pretrain"], config["finetune"]
    model, ft = pre["settings"]["model"], fine["settings"]
    corpus = config["data"].get("sample_rows", {}).get(pre["dataset"]) or config["data"]["max_rows"].get(
        pre["dataset"], "all"
    )
    lines = [
        f"- pretraining: {pre['dataset']} ({corpus} rows), {pre['settings']['epochs']} epochs, "
        f"GIN {model.get('gnn_layers', '?')} x {model.get('gnn_dim', '?')}",
        f"- finetuning: {ft['split']} split {ft['split_fractions']}, up to {ft['epochs']} epochs"
        + (f" (early stop after {ft['patience']} without improvement)" if ft["patience"] else "")
        + f", batch {ft['batch_size']}, Adam lr {ft['lr']}, dropout {ft['dropout']} in the GIN; "
        f"random forests of {ft['rf_trees']} trees; seeds {fine['seeds']}",
        f"- torch threads: {config['torch_threads']} (pretrain, embed), 1 per finetuning job",
        "- models: " + "; ".join(f"`{m}` {MODELS[m].summary}" for m in fine["models"]),
    ]
    if pre.get("weights"):  # the pretraining line is then this config's, the model's may differ
        lines.insert(1, f"- pretrained model given: `{pre['weights']}` (SHA-256 in each result's provenance)")
    return "\n".join(lines) + "\n"


def split_sizes_table(splits: dict[str, dict[str, Any]]) -> str:
    """Molecules (and positive labels) per part of each dataset's first split: a test part with a
    handful of positives makes its ROC-AUC a coarse number, and the reader should see that."""
    lines = ["| dataset | train | valid | test |", "|---|---:|---:|---:|"]
    for dataset, stats in splits.items():
        parts = next(iter(stats.values()))
        cells = [
            f"{p['molecules']}" + (f" ({p['positives']} positive labels)" if "positives" in p else "")
            for p in (parts["train"], parts["valid"], parts["test"])
        ]
        lines.append(f"| {dataset} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def full_report(
    jobs: pd.DataFrame, config: dict[str, Any] | None = None, splits: dict[str, dict[str, Any]] | None = None
) -> str:
    """The Markdown report: provenance, best-validation-epoch table, its paired comparisons,
    last-epoch table, split sizes and settings."""
    commits = sorted({str(c) for c in jobs["commit"]})
    threads = sorted({str(t) for t in jobs["torch_threads"]})
    text = [
        "# Results\n",
        f"Commit {', '.join(commits)}; torch threads per finetuning job: {', '.join(threads)}.\n",
        "## Test metric at the best validation epoch (mean ± std over seeds)\n",
        markdown(summarize(jobs, "test")),
    ]
    paired = comparisons(jobs)
    if not paired.empty:
        text += [
            "\n## Paired differences to the references (best validation epoch)\n",
            comparisons_section(paired, config),
        ]
    neural = jobs[jobs["model"].map(lambda m: MODELS[m].neural)]
    if not neural.empty:
        text += [
            "\n## Test metric at the last epoch, finetuned networks\n",
            markdown(summarize(neural, "test_last")),
        ]
    if splits:
        text += ["\n## Split sizes (first seed)\n", split_sizes_table(splits)]
    if config is not None:
        text += ["\n## Settings\n", settings_summary(config)]
    return "\n".join(text)


def _interval(row: pd.Series, name: str) -> str:
    """A paired difference of the held-out summary with its interval and p, or "-" without pairs."""
    if not row[f"{name}_pairs"] or pd.isna(row[name]):
        return "-"
    return (
        f"{_signed(row[name])} [{_signed(row[f'{name}_low'])}, {_signed(row[f'{name}_high'])}]"
        f" p {_p(row[f'{name}_p'])}"
    )


def _number(value: float) -> str:
    return "-" if pd.isna(value) else f"{value:.3f}"


def held_out_markdown(summary: pd.DataFrame) -> str:
    """The held-out summaries as one Markdown table: per (dataset, model) the seed-mean metric
    beside the out-of-bag ensemble's (and the paired gain), calibration before and after
    temperature scaling (classification), and the metric inside and outside the domain."""
    lines = [
        "Seed means; differences paired over seeds with their 95% interval and t-test p. "
        "Members: seed models averaged per test molecule (those that held it out).\n",
        "| dataset | model | metric | per seed | ensemble (members) | ensemble - per seed "
        "| ECE | ECE, T-scaled | Brier | Brier, T-scaled | out of domain | inside | outside "
        "| inside - outside |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for _, row in summary.iterrows():
        cells = [
            row["dataset"],
            row["model"],
            row["metric_name"],
            _number(row["metric"]),
            f"{_number(row['ensemble'])} ({row['members']:.2f})",
            _interval(row, "ensemble_gain"),
            *(_number(row.get(c, float("nan"))) for c in ("ece", "ece_scaled", "brier", "brier_scaled")),
            f"{row['out_of_domain']:.0%}",
            _number(row["inside"]),
            _number(row["outside"]),
            _interval(row, "domain_gap"),
        ]
        lines.append("| " + " | ".join(str(c) for c in cells) + " |")
    return "\n".join(lines) + "\n"


def plot_bars(table: pd.DataFrame, path: str | os.PathLike) -> None:
    """Grouped bars with std error bars: one panel per metric."""
    plt = pyplot()
    metrics = list(dict.fromkeys(table["metric"]))
    fig, axes = plt.subplots(1, len(metrics), figsize=(5.5 * len(metrics), 3.6), squeeze=False)
    models = [m for m in MODEL_NAMES if m in set(table["model"])]
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
        ax.set_ylabel(f"test {metric} ({BY_NAME[metric].better} is better)")
        if metric == AVERAGED.name:
            ax.set_ylim(0.4, 1.0)  # ROC-AUC: chance is 0.5, the best 1
    axes[0][0].legend(fontsize=8)
    save_figure(fig, path)


def plot_curves(paths: Sequence[str | os.PathLike], path: str | os.PathLike) -> None:
    """Validation metric per epoch, averaged over seeds, one panel per dataset."""
    plt = pyplot()
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
                # runs stopped early are shorter: average each epoch over the runs that reached it
                longest = max(len(r) for r in runs)
                padded = np.array([r + [np.nan] * (longest - len(r)) for r in runs], dtype=float)
                ax.plot(np.arange(1, longest + 1), np.nanmean(padded, axis=0), label=model)
        ax.set_title(dataset, fontsize=9)
        ax.set_xlabel("epoch")
        ax.set_ylabel(f"valid {metric_of[dataset]}")
    axes[0][0].legend(fontsize=7)
    save_figure(fig, path)


def report(
    results: Sequence[str | os.PathLike],
    csv_path: str | os.PathLike,
    md_path: str | os.PathLike,
    bars: str | os.PathLike,
    curves: str | os.PathLike,
    config: dict[str, Any] | None = None,
    split_stats: Sequence[str | os.PathLike] = (),
    *,
    comparisons_path: str | os.PathLike,
    coverage: Sequence[str | os.PathLike] = (),
    held_out: Sequence[str | os.PathLike] = (),
) -> str:
    """Write the results table (CSV, Markdown report with paired comparisons, split sizes,
    corpus coverage, settings and provenance), the paired comparisons (CSV) and both plots over
    every finetuning job; return the Markdown report.

    ``split_stats`` are the split stage's JSON files, named ``<dataset>.json``; ``coverage`` the
    coverage rule's Markdown table (none when the model was pretrained elsewhere), shown as it is
    so that a reader sees beside the scores whether a task lies inside the pretrained domain;
    ``held_out`` the held-out rule's summaries (ensemble, calibration, applicability domain)."""
    jobs = collect(results)
    table = summarize(jobs)
    with atomic_path(csv_path) as tmp:
        table.to_csv(tmp, index=False, float_format="%.4f")
    with atomic_path(comparisons_path) as tmp:
        comparisons(jobs).to_csv(tmp, index=False, float_format="%.6g")
    splits = {Path(p).stem: json.loads(Path(p).read_text()) for p in split_stats}
    text = full_report(jobs, config, splits)
    if held_out:
        text += "\n\n## Ensemble, calibration and applicability domain (test part)\n\n"
        text += held_out_markdown(pd.concat([pd.read_csv(p) for p in held_out], ignore_index=True))
    for path in coverage:  # the table under the report's own heading, without the file's title
        table_md = Path(path).read_text()
        text += "\n\n## Pretraining corpus against the finetuning datasets\n\n"
        text += table_md[table_md.index("|") :]
    write_text(text, md_path)
    plot_bars(table, bars)
    plot_curves(results, curves)
    log.info("results:\n%s", text)
    return text
