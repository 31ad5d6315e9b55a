"""Each rule's largest job in finished runs, and the ``set-resources`` block that sizes a site's jobs.

Snakemake writes one ``benchmark:`` file per job (``results/benchmarks/<rule>/<job>.tsv``: wall
seconds ``s``, peak resident memory ``max_rss`` in MB, CPU seconds). This script reads every such
file under the given run folders (a run's ``results/`` or its ``results/benchmarks/``), takes each
rule's largest peak memory and longest wall time, and prints them as a table, then as the
``set-resources`` entries a SLURM site file takes, with the same margin and rounding as
:func:`mmsa.plan.job_resources.base_request`. Run the config you will submit once (or a smaller
one with the same model and data per job), then paste the block into ``profiles/slurm/site.yaml``.

    python benchmarks/job_resources.py results/
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import pandas as pd
from _common import machine

from mmsa.plan.job_resources import MEASURED, Measured, request
from mmsa.runtime.tables import markdown_table


def largest_jobs(folders: list[Path]) -> dict[str, tuple[Measured, int]]:
    """Per rule: its largest peak memory and longest wall time over all its jobs, and their count."""
    found: dict[str, list[Measured]] = {}
    for folder in folders:
        root = folder / "benchmarks" if (folder / "benchmarks").is_dir() else folder
        for path in sorted(root.glob("*/*.tsv")):
            with open(path, newline="") as fh:
                for row in csv.DictReader(fh, delimiter="\t"):
                    found.setdefault(path.parent.name, []).append(
                        Measured(float(row["max_rss"]), float(row["s"]))
                    )
    return {
        rule: (Measured(max(j.peak_mb for j in jobs), max(j.wall_s for j in jobs)), len(jobs))
        for rule, jobs in sorted(found.items())
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", type=Path, nargs="+", help="run folders (results/ or results/benchmarks/)")
    args = parser.parse_args(argv)
    jobs = largest_jobs(args.runs)
    if not jobs:
        parser.error("no benchmark files (<rule>/<job>.tsv) under the given folders")
    rows = []
    for rule, (measured, count) in jobs.items():
        mem_mb, minutes = request(measured)
        committed = MEASURED.get(rule)
        rows.append(
            {
                "rule": rule,
                "jobs": count,
                "peak MB": round(measured.peak_mb),
                "longest s": round(measured.wall_s, 1),
                "request MB": mem_mb,
                "request min": minutes,
                "committed MB": "" if committed is None else request(committed)[0],
                "committed min": "" if committed is None else request(committed)[1],
            }
        )
    print(f"{machine()}\nruns: {', '.join(map(str, args.runs))}\n")
    numbers = ["jobs", "peak MB", "longest s", "request MB", "request min", "committed MB", "committed min"]
    print(markdown_table(pd.DataFrame(rows), numbers))
    print("\nset-resources:")
    for row in rows:
        print(f"  {row['rule']}: {{mem_mb: {row['request MB']}, runtime: {row['request min']}}}")


if __name__ == "__main__":
    main()
