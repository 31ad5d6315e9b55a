"""Featurization scaling: wall time per molecule and peak memory of every job, by corpus size.

Runs the pipeline's data stages on the first N molecules of the ZINC/MOSES corpus with a fresh,
empty feature cache (so every molecule is computed; only the raw download is reused from
``--downloads``), sharded as the default config shards (``data.shard_size`` 2500), then the
featurize stage on every shard with ``--workers`` local Dask worker processes, exactly as the
``featurize`` rule calls it. Each stage runs in a process of its own, as Snakemake runs each job
(``script:`` rules start a new interpreter): fetch, standardize and shard once, featurize once per
shard, each with its own peak (the kernel's high-water mark) and its Dask workers' peaks. The
shards run in order, so the last shard's job looks up its molecules in a cache that already holds
every earlier shard's pack: its peak beside the first one's says whether a featurize job's memory
depends on the corpus (on how much the cache holds). Prints a Markdown table:

    python benchmarks/featurize_scaling.py [--molecules 1000 10000 100000] [--workers 2]

``--one-process`` runs every stage and shard in one process instead, as this benchmark did
before 2026-12-04: that process's high-water mark then includes fetching and standardizing the
whole corpus, which no featurize job of the pipeline does.

Goal: time per molecule flat (total time linear) and peak memory flat in the corpus size: the
featurize stage holds one shard's keys and a few chunks, never the corpus.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from _common import PeakMemory, fresh_cache, machine, mib, table

from mmsa.data.key_shards import shard_path
from mmsa.plan.config import validate_config
from mmsa.plan.datasets import n_shards
from mmsa.stages.featurize import featurize
from mmsa.stages.fetch import fetch
from mmsa.stages.shard import shard
from mmsa.stages.standardize import standardize

DATA_STAGES = ("fetch", "standardize", "shard")
HEADER = [
    "molecules",
    "layout",
    "shards",
    "data stages s",
    "featurize s",
    "featurize ms/molecule",
    "s per shard (min–max)",
    "data stage peak MiB (fetch / standardize / shard)",
    "featurize job peak MiB (first / median / last / max)",
    "worker peak MiB (median / max)",
    "computed",
    "conformer failures",
]


def corpus_config(cache_dir: str, molecules: int) -> dict[str, Any]:
    return validate_config({"cache_dir": cache_dir, "data": {"max_rows": {"zinc": molecules}}})


def run_stage(config: dict[str, Any], work: Path, stage: str, workers: int) -> dict[str, Any]:
    """One job: a data stage, or ``featurize-<shard>``; its counts and seconds."""
    start = time.perf_counter()
    counts: dict[str, Any] = {}
    if stage == "fetch":
        fetch(config, "zinc", work / "raw.parquet")
    elif stage == "standardize":
        standardize(config, "zinc", work / "raw.parquet", work / "std", work / "r1.parquet", threads=workers)
    elif stage == "shard":
        shard(config, "zinc", work / "std", work / "shards", work / "r2.parquet", threads=workers)
    else:
        s = int(stage.removeprefix("featurize-"))
        counts = featurize(
            config,
            shard_path(work / "shards", s),
            work / f"man-{s}.parquet",
            work / f"rf{s}.parquet",
            threads=workers,
        )
    return {"stage": stage, "seconds": time.perf_counter() - start, "counts": counts}


def job_in_process(config: dict[str, Any], work: Path, stage: str, workers: int) -> dict[str, Any]:
    """One job in this process, measured: this process's high-water mark and its workers'."""
    with PeakMemory() as memory:
        result = run_stage(config, work, stage, workers)
    return {**result, "main": memory.main, "workers": memory.worker_peaks()}


def job_in_subprocess(cache_dir: str, molecules: int, work: Path, stage: str, workers: int) -> dict[str, Any]:
    """One job in a new interpreter, as Snakemake starts it."""
    command = [sys.executable, __file__, "--job", stage, "--work", str(work), "--cache", cache_dir]
    command += ["--molecules", str(molecules), "--workers", str(workers)]
    out = subprocess.run(command, check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def measure(molecules: int, workers: int, downloads: str, keep: str | None, one_process: bool) -> dict:
    """One corpus size: the data stages, then featurize of every shard, each job in a process
    of its own (or all in this one with ``one_process``); the work folder goes into
    ``keep/<molecules>`` when given and is kept (a temporary folder otherwise)."""
    if keep:
        folder = Path(keep) / str(molecules)
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        context = contextlib.nullcontext(str(folder))
    else:
        context = tempfile.TemporaryDirectory()
    with context as tmp, fresh_cache(tmp, downloads) as cache_dir:
        work = Path(tmp)
        config = corpus_config(cache_dir, molecules)
        stages = [*DATA_STAGES, *(f"featurize-{s}" for s in range(n_shards(config, "zinc")))]
        jobs = []
        for stage in stages:
            if one_process:
                jobs.append(job_in_process(config, work, stage, workers))
            else:
                jobs.append(job_in_subprocess(cache_dir, molecules, work, stage, workers))
            print(
                f"  {molecules}: {stage} {jobs[-1]['seconds']:.0f} s, {mib(jobs[-1]['main'])} MiB",
                file=sys.stderr,
            )
    data = [j for j in jobs if j["stage"] in DATA_STAGES]
    shards = [j for j in jobs if j["stage"] not in DATA_STAGES]
    peaks = [p for j in shards for p in j["workers"]]
    totals: dict[str, int] = {}
    for j in shards:
        totals = {k: totals.get(k, 0) + v for k, v in j["counts"].items()}
    return {
        "molecules": molecules,
        "layout": "one process" if one_process else "a process per job",
        "data": data,
        "shards": shards,
        "worker_median": float(np.median(peaks)) if peaks else 0.0,
        "worker_peak": max(peaks, default=0),
        **totals,
    }


def row(r: dict) -> list[object]:
    shards = r["shards"]
    seconds = [j["seconds"] for j in shards]
    main = [j["main"] for j in shards]
    featurize_s = sum(seconds)
    return [
        f"{r['molecules']:,}",
        r["layout"],
        len(shards),
        f"{sum(j['seconds'] for j in r['data']):.0f}",
        f"{featurize_s:.0f}",
        f"{1000 * featurize_s / max(1, r['computed']):.1f}",
        f"{min(seconds):.0f}–{max(seconds):.0f}",
        " / ".join(mib(j["main"]) for j in r["data"]),
        f"{mib(main[0])} / {mib(float(np.median(main)))} / {mib(main[-1])} / {mib(max(main))}",
        f"{mib(r['worker_median'])} / {mib(r['worker_peak'])}",
        f"{r['computed']:,}",
        r["conformer_failures"],
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--molecules", type=int, nargs="+", default=[1000, 10000, 100000])
    parser.add_argument("--workers", type=int, default=2, help="local Dask worker processes (default 2)")
    parser.add_argument(
        "--downloads",
        default="resources/cache/downloads",
        help="an existing cache's downloads folder to reuse (features are never reused)",
    )
    parser.add_argument(
        "--keep",
        help="keep each size's shards, manifests (man-<shard>.parquet) and feature cache under KEEP/<N>/",
    )
    parser.add_argument(
        "--one-process",
        action="store_true",
        help="run every stage and shard of a size in one process (how this benchmark measured before)",
    )
    parser.add_argument("--one", action="store_true", help=argparse.SUPPRESS)  # a single size, as JSON
    parser.add_argument("--job", help=argparse.SUPPRESS)  # a single job of a size, as JSON
    parser.add_argument("--work", help=argparse.SUPPRESS)
    parser.add_argument("--cache", help=argparse.SUPPRESS)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    if args.job:  # one job in this (new) process: its high-water mark is the job's alone
        config = corpus_config(args.cache, args.molecules[0])
        print(json.dumps(job_in_process(config, Path(args.work), args.job, args.workers)))
        return
    if args.one:
        print(
            json.dumps(measure(args.molecules[0], args.workers, args.downloads, args.keep, args.one_process))
        )
        return

    results = []
    for n in args.molecules:  # each size in its own process, so no size sees another's memory
        command = [sys.executable, __file__, "--one", "--molecules", str(n), "--workers", str(args.workers)]
        command += ["--downloads", args.downloads] + (["--keep", args.keep] if args.keep else [])
        command += ["--one-process"] if args.one_process else []
        out = subprocess.run(command, check=True, stdout=subprocess.PIPE, text=True)
        results.append(json.loads(out.stdout.strip().splitlines()[-1]))
    print(f"\nZINC/MOSES, first N molecules, featurize with {args.workers} local Dask worker processes")
    print(f"Machine: {machine()}\n")
    print(table(HEADER, [row(r) for r in results]))
    print("\nPer featurize job (seconds, job peak MiB, each worker's peak MiB), in shard order:\n")
    for r in results:
        jobs = [
            f"{j['seconds']:.0f} s, {mib(j['main'])}, [{', '.join(mib(p) for p in j['workers'])}]"
            for j in r["shards"]
        ]
        print(f"- {r['molecules']:,}: " + "; ".join(jobs))


if __name__ == "__main__":
    main()
