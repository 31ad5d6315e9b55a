"""The study_report stage: a study's per-seed results, paired run against its references.

Every run of a study (:mod:`mmsa.plan.studies`) writes its own per-seed results; this stage reads
them all into one table (``scores.csv``: run, dataset, model, seed, the SHA-256 of the split
table, and each result's scores and commit), checks that every run was split exactly as the run it
is paired with (byte-identical split tables, dataset by dataset), and pairs each run's models with
its references seed by seed with the report's own :func:`mmsa.eval.comparisons.comparisons`, on
the study's score (``valid`` for a screen: a setting chosen on test scores would be tuned on the
test set). Writes ``comparisons.csv`` and ``study.md`` (one table per reference, through
:mod:`mmsa.runtime.tables`).
"""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from mmsa.eval.comparisons import CLASSIFICATION_AVERAGE, CONFIDENCE, collect, comparisons
from mmsa.plan.compared_models import REFERENCES
from mmsa.plan.studies import Study, load_study
from mmsa.runtime.errors import InputError
from mmsa.runtime.hashing import sha256_file
from mmsa.runtime.io import write_csv, write_text
from mmsa.runtime.tables import interval, markdown_table, p_value, signed

FIRST_COLUMNS = ["run", "dataset", "model", "seed", "split_sha256"]


def study_scores(study: Study, folder: Path) -> pd.DataFrame:
    """Every run's per-seed results, with the SHA-256 of the split table each was scored on."""
    frames = []
    for run in study.runs:
        frame = collect([folder / p for p in study.result_files(run)]).assign(run=run)
        splits = {Path(p).stem: sha256_file(folder / p) for p in study.split_files(run)}
        frame["split_sha256"] = frame["dataset"].map(splits)
        frames.append(frame)
    scores = pd.concat(frames, ignore_index=True)
    return scores[FIRST_COLUMNS + [c for c in scores.columns if c not in FIRST_COLUMNS]]


def paired(study: Study, scores: pd.DataFrame) -> pd.DataFrame:
    """Each run's models against its references' reference models, on the study's score."""
    frames = []
    for run in study.runs.values():
        if run.references is None:
            continue
        mine = scores[scores["run"] == run.name]
        theirs = scores[(scores["run"] == run.references) & scores["model"].isin(REFERENCES)]
        for dataset in sorted(set(mine["dataset"])):
            ours = set(mine.loc[mine["dataset"] == dataset, "split_sha256"])
            base = set(theirs.loc[theirs["dataset"] == dataset, "split_sha256"])
            if ours != base:
                raise InputError(
                    f"run {run.name} and its references {run.references} split {dataset} differently "
                    "(split tables of other bytes): their results cannot be paired"
                )
        jobs = pd.concat([theirs, mine[~mine["model"].isin(REFERENCES)]], ignore_index=True)
        table = comparisons(jobs, study.score)
        table = table[table["model"].isin(set(mine["model"]) - set(REFERENCES))]
        frames.append(table.assign(run=run.name, references=run.references))
    if not frames:
        return pd.DataFrame()
    table = pd.concat(frames, ignore_index=True)
    return table[["run", "references", *[c for c in table.columns if c not in ("run", "references")]]]


def study_markdown(study: Study, table: pd.DataFrame, scores: pd.DataFrame) -> str:
    """One table per reference: each run's model minus it, per dataset and on the average."""
    commits = ", ".join(sorted({str(c) for c in scores["commit"].dropna()})) or "unknown"
    seeds = sorted(set(scores["seed"]))
    lines = [
        f"# Study {study.path.stem}\n",
        f"{study.score.capitalize()} scores at the best validation epoch, {len(seeds)} seeds "
        f"({seeds[0]}-{seeds[-1]}); each row pairs a run's model with its references' reference model "
        f"seed by seed on the same split: the mean difference, its {CONFIDENCE:.0%} t-interval, the "
        "paired t-test and the Wilcoxon signed-rank test; resolved where the interval excludes 0. "
        f"Study file `{study.path}`; results' commits: {commits}.\n",
    ]
    for reference in [r for r in REFERENCES if not table.empty and r in set(table["reference"])]:
        part = table[table["reference"] == reference]
        grid = pd.DataFrame(
            {
                "run": part["run"],
                f"model − {reference}": part["model"],
                "dataset": [f"**{d}**" if d == CLASSIFICATION_AVERAGE else d for d in part["dataset"]],
                "seeds (dropped)": [
                    f"{n} ({k})" if k else str(n) for n, k in zip(part["pairs"], part["dropped"], strict=True)
                ],
                "mean difference": [signed(v) for v in part["mean_difference"]],
                f"{CONFIDENCE:.0%} interval": [
                    interval(lo, hi) for lo, hi in zip(part["ci_low"], part["ci_high"], strict=True)
                ],
                "paired t p": [p_value(v) for v in part["t_test_p"]],
                "Wilcoxon p": [p_value(v) for v in part["wilcoxon_p"]],
                "verdict": part["verdict"],
            }
        )
        lines += [
            f"## Model − {reference}\n",
            markdown_table(grid, ["seeds (dropped)", "mean difference", "paired t p", "Wilcoxon p"]),
        ]
    return "\n".join(lines)


def study_report(
    study_path: str | os.PathLike,
    repo: str | os.PathLike,
    folder: str | os.PathLike,
    scores_csv: str | os.PathLike,
    comparisons_csv: str | os.PathLike,
    markdown: str | os.PathLike,
) -> pd.DataFrame:
    """Read, pair and tabulate the study's results (its runs under ``folder/runs``)."""
    study = load_study(study_path, repo)
    scores = study_scores(study, Path(folder))
    table = paired(study, scores)
    write_csv(scores, scores_csv)
    write_csv(table, comparisons_csv)
    write_text(study_markdown(study, table, scores), markdown)
    return table
