"""Which variant a stage of issue 32's screen chooses, from validation scores alone.

The rule was fixed before any screen result was read (benchmarks/results/transfer_study/
issue32_plan.md). For each variant, on every split: the validation classification average of
``mmsa`` minus that of ``no-pretrain`` in the variant's own baseline run (the same finetuning
settings). The stage's first variant is the current choice; another replaces it only where the
paired 95% t-interval of their per-split difference excludes 0 in its favour, and among such the
largest mean gain wins. Only the ``valid`` column of the screen's ``scores.csv`` is read: test
scores never choose.

Which baseline run a variant is paired with comes from the study's own declaration (``--study``):
a study file (``config/studies/*.yaml``: each run's ``references``), or the ``configs/`` folder of
a screen run by the retired ``benchmarks/transfer_study.py`` (issue 32's stages A-C, from clones
pinned to their commits), where a variant's baseline is the run of the references with the same
finetuning block.

    python benchmarks/screen_choice.py --scores A/scores.csv [B/scores.csv] \
        --study A/configs [B/configs | config/studies/S.yaml] --variants V1 V2 V3
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd
import yaml

from mmsa.eval.comparisons import CLASSIFICATION_AVERAGE, paired_differences, paired_statistics
from mmsa.plan.studies import declared_references as study_references
from mmsa.runtime.tables import markdown_table

MODEL, REFERENCE = "mmsa", "no-pretrain"
COLUMNS = ["run", "dataset", "model", "seed", "metric", "task_type", "valid"]  # never "test"


def _finetuning(config: dict) -> dict:
    """A run's finetuning block without its models: what a variant and its baseline share."""
    return {k: v for k, v in config.get("finetune", {}).items() if k != "models"}


def declared_references(study: Path) -> dict[str, str]:
    """Each run's baseline run, as the study declared it: a study file's ``references``, or, in a
    folder of run configs, the run with ``no-pretrain`` and the same finetuning block."""
    if study.is_file():
        return study_references(study)
    configs = {path.stem: yaml.safe_load(path.read_text()) for path in sorted(study.glob("*.yaml"))}
    baselines = {
        name: _finetuning(config)
        for name, config in configs.items()
        if REFERENCE in config.get("finetune", {}).get("models", [])
    }
    references = {}
    for name, config in configs.items():
        matches = [b for b, block in baselines.items() if block == _finetuning(config) and b != name]
        if len(matches) == 1:
            references[name] = matches[0]
    return references


def validation_gains(scores: pd.DataFrame, variant: str, references: dict[str, str]) -> pd.Series:
    """Per split: the validation classification average of mmsa in ``variant`` minus that of
    no-pretrain in its baseline run."""
    if variant not in references:
        raise SystemExit(f"{variant}: no baseline run declared for it in the --study files")
    base = references[variant]
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


def choose(scores: pd.DataFrame, variants: list[str], references: dict[str, str]) -> tuple[str, pd.DataFrame]:
    """The chosen variant and a table: each variant's mean gain over no-pretrain in its baseline
    run (``references``), and its paired difference to the first variant with the interval."""
    gains = {v: validation_gains(scores, v, references) for v in variants}
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
        "--study",
        type=Path,
        nargs="+",
        required=True,
        help="where each variant's baseline run is declared: a study file (config/studies/*.yaml) "
        "or a screen folder's configs/",
    )
    parser.add_argument(
        "--variants", nargs="+", required=True, help="the stage's variants, the current choice first"
    )
    args = parser.parse_args(argv)
    scores = pd.concat([pd.read_csv(path, usecols=COLUMNS) for path in args.scores], ignore_index=True)
    scores = scores.drop_duplicates(["run", "dataset", "model", "seed"])  # a baseline both folders hold
    references = {name: base for study in args.study for name, base in declared_references(study).items()}
    chosen, table = choose(scores, args.variants, references)
    print(markdown_table(table, right=[c for c in table.columns if c != "variant"]))
    print(f"chosen: {chosen}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
