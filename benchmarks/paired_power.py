"""Power of the report's paired comparisons: how many seeds resolve a difference of what size.

For every model and dataset (and the classification average) the per-seed paired differences
``model - no-pretrain`` are taken exactly as the report pairs them
(``mmsa.eval.comparisons.paired_differences``), and their standard deviation ``sd`` (ddof 1) is estimated.
For n seeds the table gives the minimum detectable difference: the smallest true mean
difference that the report's two-sided paired t-test at 5% resolves with 80% power. Under
normally distributed differences the t statistic is noncentral t with n - 1 degrees of freedom
and noncentrality ``delta * sqrt(n) / sd``; the script solves

    P(|T| > t_{0.975, n-1}) = 0.8,   T ~ nct(n - 1, delta * sqrt(n) / sd)

for ``delta`` (scipy's ``nct``, no normal approximation: with 3 seeds the normal formula
``(z_0.975 + z_0.8) * sd / sqrt(n)`` gives half the difference needed). ``delta = k(n) * sd`` with
``k`` depending on n only, so the table also prints ``k``. Inputs:

    python benchmarks/paired_power.py [RESULTS]          # RESULTS/finetune/<d>/<m>/seed-<n>.json
    python benchmarks/paired_power.py STUDY/study/scores.csv --reference rf-physchem   # a study's
    python benchmarks/paired_power.py --sd bace=0.06 --sd bbbp=0.02   # paired SDs known already

Read the figure with two cautions. An SD from 3 seeds is itself rough (its 95% interval runs
from about 0.5 to 6 times the estimate). And it measures only what the seeds varied: under the
deterministic ``scaffold`` split, the initialization alone; under ``scaffold_balanced`` the split
too, which is larger. Estimate it under the split the default job is to use.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from _common import table
from scipy.optimize import brentq
from scipy.stats import nct
from scipy.stats import t as student_t

from mmsa.eval.comparisons import collect, paired_differences
from mmsa.plan.compared_models import REFERENCES

SEED_COUNTS = (3, 5, 10, 20, 30)
ALPHA = 0.05
POWER = 0.8


def power(delta_over_sd: float, n: int, alpha: float = ALPHA) -> float:
    """Power of the two-sided paired t-test with ``n`` pairs at a true mean difference of
    ``delta_over_sd`` paired standard deviations."""
    df = n - 1
    critical = student_t.ppf(1 - alpha / 2, df)
    shift = delta_over_sd * math.sqrt(n)
    # P(T < -c) is written P(-T > c), the upper tail at -shift: scipy's nct.cdf returns NaN
    # for some far lower tails (df 4, noncentrality 8.8), its sf does not
    return float(nct.sf(critical, df, shift) + nct.sf(critical, df, -shift))


def detectable_multiple(n: int, alpha: float = ALPHA, target: float = POWER) -> float:
    """``k(n)``: the true mean difference, in paired SDs, that ``n`` pairs resolve with power
    ``target`` (power rises with the difference, so the root is unique)."""
    if n < 2:
        raise ValueError(f"a paired t-test needs at least 2 pairs, got {n}")
    return brentq(lambda k: power(k, n, alpha) - target, 1e-6, 100.0, xtol=1e-10)


def finetune_jobs(results: str | Path) -> pd.DataFrame:
    """Every per-seed result of a results folder, or of a study's ``scores.csv`` (its runs' models
    paired as the study pairs them: each model name is one run's)."""
    results = Path(results)
    if results.suffix == ".csv":
        scores = pd.read_csv(results)
        twice = scores.duplicated(["dataset", "model", "seed"])
        if twice.any():
            runs = sorted(scores["run"][scores["model"].isin(scores["model"][twice])].unique())
            raise SystemExit(f"{results}: runs {runs} share a model name; pair them with the study report")
        return scores.drop(columns="run")
    return collect(sorted(results.glob("finetune/*/*/seed-*.json")))


def paired_sds(results: str | Path, reference: str) -> dict[str, tuple[float, int]]:
    """``"model, dataset" -> (sd of model - reference, pairs)`` over a results folder's seeds, or a
    study's ``scores.csv``."""
    jobs = finetune_jobs(results)
    if jobs.empty:
        raise SystemExit(f"no finetuning results in {results}")
    sds = {}
    for model in dict.fromkeys(m for m in jobs["model"] if m != reference):
        for dataset, _, diff in paired_differences(jobs, model, reference):
            kept = diff.dropna().to_numpy()
            if len(kept) >= 2:
                sds[f"{model}, {dataset}"] = (float(np.std(kept, ddof=1)), len(kept))
    return sds


def power_table(sds: dict[str, tuple[float, int | None]], seed_counts: Sequence[int]) -> str:
    """Markdown: one row per SD, the minimum detectable difference per seed count; and k(n)."""
    multiples = [detectable_multiple(n) for n in seed_counts]
    header = ["model, dataset", "paired sd (seeds)", *[f"n = {n}" for n in seed_counts]]
    rows = [["k(n) = difference / sd", "", *[f"{k:.3f}" for k in multiples]]]
    for label, (sd, pairs) in sds.items():
        measured = f"{sd:.4f}" + (f" ({pairs})" if pairs else "")
        rows.append([label, measured, *[f"{k * sd:.4f}" for k in multiples]])
    return table(header, rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "results", nargs="?", default="results", help="a results folder, or a study's study/scores.csv"
    )
    parser.add_argument("--reference", default=REFERENCES[0], choices=REFERENCES)
    parser.add_argument(
        "--sd", action="append", default=[], metavar="LABEL=SD", help="a known paired SD (repeatable)"
    )
    parser.add_argument("--seeds", type=int, nargs="+", default=list(SEED_COUNTS))
    args = parser.parse_args()
    if args.sd:
        sds = {label: (float(value), None) for label, value in (s.split("=", 1) for s in args.sd)}
    else:
        sds = paired_sds(args.results, args.reference)
    print(
        f"Smallest true mean difference (model - {args.reference}) that a two-sided paired t-test "
        f"at {ALPHA:.0%} resolves with {POWER:.0%} power, for n seeds (noncentral t):\n"
    )
    print(power_table(sds, args.seeds))


if __name__ == "__main__":
    main()
