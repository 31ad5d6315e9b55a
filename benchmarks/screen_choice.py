"""Which variant a stage of issue 32's screen chooses, from validation scores alone.

The rule was fixed before any screen result was read (benchmarks/results/transfer_study/
issue32_plan.md). For each variant, on every split: the validation classification average of
``mmsa`` minus that of ``no-pretrain`` in the variant's own baseline run (the same finetuning
settings). The stage's first variant is the current choice; another replaces it only where the
paired 95% t-interval of their per-split difference excludes 0 in its favour, and among such the
largest mean gain wins. Only the ``valid`` column of the screen's ``scores.csv`` is read: test
scores never choose.

    python benchmarks/screen_choice.py --scores SCREEN/scores.csv [MORE/scores.csv] --variants A B C
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

from mmsa.eval.comparisons import CLASSIFICATION_AVERAGE, paired_differences, paired_statistics
from mmsa.runtime.tables import markdown_table

sys.path.insert(0, str(Path(__file__).resolve().parent))
from transfer_study import VARIANTS, baseline_of  # noqa: E402

MODEL, REFERENCE = "mmsa", "no-pretrain"
COLUMNS = ["run", "dataset", "model", "seed", "metric", "task_type", "valid"]  # never "test"


def validation_gains(scores: pd.DataFrame, variant: str) -> pd.Series:
    """Per split: the validation classification average of mmsa in ``variant`` minus that of
    no-pretrain in its baseline run."""
    base = baseline_of(VARIANTS[variant])
    jobs = pd.concat(
        [
            scores[(scores["run"] == variant) & (scores["model"] == MODEL)],
            scores[(scores["run"] == base) & (scores["model"] == REFERENCE)],
        ],
        ignore_index=True,
    )
    differences = {name: diff for name, _, diff in paired_differences(jobs, MODEL, REFERENCE, "valid")}
    if CLASSIFICATION_AVERAGE not in differences:
        raise SystemExit(f"{variant}: no paired validation results against {base} yet")
    return differences[CLASSIFICATION_AVERAGE]


def _interval(stats: dict) -> str:
    return f"{stats['mean_difference']:+.4f} [{stats['ci_low']:+.4f}, {stats['ci_high']:+.4f}]"


def choose(scores: pd.DataFrame, variants: list[str]) -> tuple[str, pd.DataFrame]:
    """The chosen variant and a table: each variant's mean gain over no-pretrain, and its paired
    difference to the first variant with the interval."""
    gains = {v: validation_gains(scores, v) for v in variants}
    first = variants[0]
    rows = []
    chosen, best = first, 0.0
    for v in variants:
        own = paired_statistics(gains[v].dropna().to_numpy())
        versus = pd.concat([gains[v], gains[first]], axis=1, join="inner").dropna()
        stats = paired_statistics((versus.iloc[:, 0] - versus.iloc[:, 1]).to_numpy())
        better = v != first and stats["ci_low"] > 0
        if better and stats["mean_difference"] > best:
            chosen, best = v, stats["mean_difference"]
        rows.append(
            {
                "variant": v,
                "splits": len(gains[v].dropna()),
                f"valid {MODEL} - {REFERENCE}": _interval(own),
                f"vs {first}": "—" if v == first else _interval(stats),
                "resolved gain": "—" if v == first else ("yes" if better else "no"),
            }
        )
    return chosen, pd.DataFrame(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--scores",
        type=Path,
        nargs="+",
        required=True,
        help="the screen's scores.csv (several: this stage's and the earlier stage's folders)",
    )
    parser.add_argument(
        "--variants", nargs="+", required=True, help="the stage's variants, the current choice first"
    )
    args = parser.parse_args(argv)
    scores = pd.concat([pd.read_csv(path, usecols=COLUMNS) for path in args.scores], ignore_index=True)
    scores = scores.drop_duplicates(["run", "dataset", "model", "seed"])  # a baseline both folders hold
    chosen, table = choose(scores, args.variants)
    print(markdown_table(table, right=[c for c in table.columns if c != "variant"]))
    print(f"chosen: {chosen}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
