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
    CLASSIFICATION_AVERAGE,
    CONFIDENCE,
    WILCOXON_MIN_PAIRS,
    collect,
    comparisons,
    summarize,
)
from mmsa.plan.compared_models import MODEL_NAMES, MODELS
from mmsa.runtime.figures import pyplot, save_figure
from mmsa.runtime.io import atomic_path, write_text
from mmsa.runtime.tables import MISSING, interval, markdown_table, p_value, signed, write_html_tables
from mmsa.stages.held_out import HELD_OUT_NUMBERS, HELD_OUT_TEXT, held_out_grid

log = logging.getLogger(__name__)


def _cell(mean: float, std: float) -> str:
    """``mean ± std``, or ``n/a`` where the metric is undefined (:func:`undefined_note` says why)."""
    return "n/a" if np.isnan(mean) else f"{mean:.3f} ± {std:.3f}"


def undefined_note(jobs: pd.DataFrame) -> str:
    """Which seeds have no test metric and why (each job's ``test_undefined``), one sentence per
    (dataset, model, reason); empty when every seed has one."""
    if "test_undefined" not in jobs:
        return ""
    missing = jobs[jobs["test_undefined"].notna()]
    groups = missing.groupby(["dataset", "model", "test_undefined"], sort=False)["seed"]
    return " ".join(
        f"No test metric for {dataset} {model} (seeds {', '.join(map(str, sorted(seeds)))}): {reason}."
        for (dataset, model, reason), seeds in groups
    )


RESULT_NAMES = ("dataset", "metric")  # the results grid's columns that name a row; models follow


def _commits(jobs: pd.DataFrame) -> str:
    """The commits that produced the finetuning jobs, as the report names them."""
    return ", ".join(sorted({str(c) for c in jobs["commit"]}))


def _model_columns(grid: pd.DataFrame) -> list[str]:
    """The results grid's number columns: one per model, after the columns that name a row."""
    return [c for c in grid.columns if c not in RESULT_NAMES]


def results_grid(table: pd.DataFrame) -> pd.DataFrame:
    """The results table as people read it: datasets as rows, models as columns, ``mean ± std``
    cells, and the classification average (of the per-dataset means) as the last row."""
    models = [m for m in MODEL_NAMES if m in set(table["model"])]
    rows = []
    for (dataset, metric), part in table.groupby(["dataset", "metric"], sort=False):
        cells = part.set_index("model")
        row = [
            _cell(cells.loc[m, "mean"], cells.loc[m, "std"]) if m in cells.index else MISSING for m in models
        ]
        rows.append([dataset, f"{metric} {BY_NAME[metric].arrow}", *row])
    cls = table[table["task_type"] == "classification"]
    if not cls.empty:
        means = cls.groupby("model")["mean"].mean()
        cells = [
            ("n/a" if np.isnan(means[m]) else f"{means[m]:.3f}") if m in means.index else MISSING
            for m in models
        ]
        rows.append([CLASSIFICATION_AVERAGE, f"{AVERAGED.name} {AVERAGED.arrow}", *cells])
    return pd.DataFrame(rows, columns=[*RESULT_NAMES, *models])


def markdown(table: pd.DataFrame) -> str:
    """:func:`results_grid` as a Markdown table."""
    grid = results_grid(table)
    return markdown_table(grid, right=_model_columns(grid))


COMPARISON_NUMBERS = ("seeds (dropped)", "mean difference", "paired t p", "Wilcoxon p")


def comparisons_grid(table: pd.DataFrame) -> pd.DataFrame:
    """The paired comparisons as people read them, one row per (model, reference, dataset)."""
    rows = [
        [
            f"{r.model} − {r.reference}",
            r.dataset,
            f"{r.metric} {BY_NAME[r.metric].arrow}",
            f"{r.pairs}" + (f" ({r.dropped})" if r.dropped else ""),
            signed(r.mean_difference),
            interval(r.ci_low, r.ci_high),
            p_value(r.t_test_p),
            p_value(r.wilcoxon_p),
            r.verdict,
        ]
        for r in table.itertuples()
    ]
    columns = ["model − reference", "dataset", "metric", "seeds (dropped)", "mean difference"]
    columns += [f"{CONFIDENCE:.0%} interval", "paired t p", "Wilcoxon p", "verdict"]
    return pd.DataFrame(rows, columns=columns)


def comparisons_markdown(table: pd.DataFrame) -> str:
    """:func:`comparisons_grid` as a Markdown table."""
    return markdown_table(comparisons_grid(table), right=COMPARISON_NUMBERS)


def comparisons_text(config: dict[str, Any] | None) -> str:
    """What the paired comparisons mean (one paragraph, the same in results.md and the HTML page)."""
    split = config["finetune"]["settings"]["split"] if config is not None else None
    scope = (
        " The deterministic scaffold split is one split: its seeds vary the initialization only, so "
        "these intervals say nothing about other splits (finetune.settings.split: "
        "scaffold_balanced draws one per seed)."
        if split == "scaffold"
        else ""
    )
    return (
        "Each row pairs two models seed by seed on the same split: the mean of model − reference "
        f"(in the metric's units; its arrow says which way is better), its {CONFIDENCE:.0%} t-interval, the "
        "two-sided paired t-test and, from "
        f"{WILCOXON_MIN_PAIRS} seeds on, the Wilcoxon signed-rank test. A row is resolved only "
        "where the interval excludes 0, and then names the better model; an interval that "
        "contains 0 is not resolved: these seeds show no difference either way. Seeds where "
        "either metric is undefined (a single-class test part) are dropped from that pair and "
        "counted in brackets. The classification average is averaged over datasets per seed, then "
        "differenced; RMSE is compared per dataset only (each dataset has its own units). No "
        "correction for the number of comparisons." + scope
    )


def comparisons_section(table: pd.DataFrame, config: dict[str, Any] | None) -> str:
    """What the paired comparisons mean, and their table."""
    return comparisons_text(config) + "\n\n" + comparisons_markdown(table)


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
    rows = []
    for dataset, stats in splits.items():
        parts = next(iter(stats.values()))
        cells = [
            f"{p['molecules']}" + (f" ({p['positives']} positive labels)" if "positives" in p else "")
            for p in (parts["train"], parts["valid"], parts["test"])
        ]
        rows.append([dataset, *cells])
    numbers = ("train", "valid", "test")
    return markdown_table(pd.DataFrame(rows, columns=["dataset", *numbers]), right=numbers)


def full_report(
    jobs: pd.DataFrame,
    config: dict[str, Any] | None = None,
    splits: dict[str, dict[str, Any]] | None = None,
    paired: pd.DataFrame | None = None,
) -> str:
    """The Markdown report: provenance, best-validation-epoch table, its paired comparisons
    (``paired``, computed here when the caller has not), last-epoch table, split sizes and
    settings."""
    threads = sorted({str(t) for t in jobs["torch_threads"]})
    text = [
        "# Results\n",
        f"Commit {_commits(jobs)}; torch threads per finetuning job: {', '.join(threads)}.\n",
        "## Test metric at the best validation epoch (mean ± std over seeds)\n",
        markdown(summarize(jobs, "test")),
    ]
    if note := undefined_note(jobs):
        text += ["", note]
    paired = comparisons(jobs) if paired is None else paired
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


def held_out_markdown(summary: pd.DataFrame) -> str:
    """The held-out summaries (every dataset's) as one Markdown table, after what it holds."""
    return HELD_OUT_TEXT + "\n\n" + markdown_table(held_out_grid(summary), right=HELD_OUT_NUMBERS)


def write_pages(
    jobs: pd.DataFrame,
    table: pd.DataFrame,
    paired: pd.DataFrame,
    config: dict[str, Any] | None,
    table_page: str | os.PathLike,
    comparisons_page: str | os.PathLike,
) -> None:
    """The results table and the paired comparisons as HTML tables (:mod:`mmsa.runtime.tables`):
    the report's viewer shows them inline, and its front page shows the results table."""
    grid = results_grid(table)
    text = (
        f"Test metric (ROC-AUC for classification, RMSE for regression; the arrow says which way "
        f"is better) at the best validation epoch, mean ± std over {jobs['seed'].nunique()} finetuning "
        f"seeds; n/a where no seed has a test metric. Commit {_commits(jobs)}."
    )
    if note := undefined_note(jobs):
        text += " " + note
    write_html_tables("Results", [("", text, grid, _model_columns(grid))], table_page)
    write_html_tables(
        "Paired differences to the references",
        [("Best validation epoch", comparisons_text(config), comparisons_grid(paired), COMPARISON_NUMBERS)],
        comparisons_page,
    )


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
    table_page: str | os.PathLike,
    comparisons_page: str | os.PathLike,
) -> str:
    """Write the results table (CSV, Markdown report with paired comparisons, split sizes,
    corpus coverage, settings and provenance), the paired comparisons (CSV) and both plots over
    every finetuning job; return the Markdown report. ``table_page`` and ``comparisons_page``
    are the two tables as HTML for the report viewer (:func:`write_pages`).

    ``split_stats`` are the split stage's JSON files, named ``<dataset>.json``; ``coverage`` the
    coverage rule's Markdown table (none when the model was pretrained elsewhere), shown as it is
    so that a reader sees beside the scores whether a task lies inside the pretrained domain;
    ``held_out`` the held-out rule's summaries (ensemble, calibration, applicability domain)."""
    jobs = collect(results)
    table = summarize(jobs)
    with atomic_path(csv_path) as tmp:
        table.to_csv(tmp, index=False, float_format="%.4f")
    paired = comparisons(jobs)
    with atomic_path(comparisons_path) as tmp:
        paired.to_csv(tmp, index=False, float_format="%.6g")
    write_pages(jobs, table, paired, config, table_page, comparisons_page)
    splits = {Path(p).stem: json.loads(Path(p).read_text()) for p in split_stats}
    text = full_report(jobs, config, splits, paired)
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
