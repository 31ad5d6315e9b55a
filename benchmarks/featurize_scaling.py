"""Featurization scaling: wall time per molecule and peak memory of every process, by corpus size.

Runs the pipeline's data stages on the first N molecules of the ZINC/MOSES corpus with a fresh,
empty feature cache (so every molecule is computed; only the raw download is reused from
``--downloads``), sharded as the default config shards (``data.shard_size`` 2500), and the
featurize stage on every shard with ``--workers`` local Dask worker processes, exactly as the
``featurize`` rule calls it. Each size runs in its own subprocess, so the main process's peak
memory is that size's alone; each shard's worker processes are measured separately (the table
gives the median and the largest, a list after it every shard's). Prints a Markdown table:

    python benchmarks/featurize_scaling.py [--molecules 1000 10000 100000] [--workers 2]

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

import numpy as np
from _common import PeakMemory, fresh_cache, machine, mib, table

from mmsa.data.shard import shard_path
from mmsa.plan.config import validate_config
from mmsa.plan.datasets import n_shards
from mmsa.stages.featurize import featurize
from mmsa.stages.fetch import fetch
from mmsa.stages.shard import shard
from mmsa.stages.standardize import standardize

HEADER = [
    "molecules",
    "shards",
    "fetch+standardize+shard s",
    "featurize s",
    "featurize ms/molecule",
    "s per shard (min–max)",
    "main process peak MiB",
    "worker processes",
    "worker peak MiB (median / max)",
    "computed",
    "conformer failures",
]


def measure(molecules: int, workers: int, downloads: str, keep: str | None) -> dict:
    """One corpus size in this process: data stages, then featurize of every shard (into
    ``keep/<molecules>`` when given, kept afterwards; a temporary folder otherwise)."""
    if keep:
        folder = Path(keep) / str(molecules)
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        context = contextlib.nullcontext(str(folder))
    else:
        context = tempfile.TemporaryDirectory()
    with context as tmp, fresh_cache(tmp, downloads) as cache_dir:
        work = Path(tmp)
        config = validate_config({"cache_dir": cache_dir, "data": {"max_rows": {"zinc": molecules}}})
        start = time.perf_counter()
        fetch(config, "zinc", work / "raw.parquet")
        standardize(config, "zinc", work / "raw.parquet", work / "std", work / "r1.parquet", threads=workers)
        shard(config, "zinc", work / "std", work / "shards", work / "r2.parquet", threads=workers)
        prep = time.perf_counter() - start
        shards = n_shards(config, "zinc")
        totals: dict[str, int] = {}
        per_shard = []
        for s in range(shards):
            with PeakMemory() as memory:  # one per shard: each shard gets a new worker pool
                start = time.perf_counter()
                counts = featurize(
                    config,
                    shard_path(work / "shards", s),
                    work / f"man-{s}.parquet",
                    work / f"rf{s}.parquet",
                    threads=workers,
                )
                seconds = time.perf_counter() - start
            totals = {k: totals.get(k, 0) + v for k, v in counts.items()}
            per_shard.append({"seconds": seconds, "main": memory.main, "workers": memory.worker_peaks()})
    peaks = [p for shard in per_shard for p in shard["workers"]]
    return {
        "molecules": molecules,
        "shards": shards,
        "prep_s": prep,
        "featurize_s": sum(shard["seconds"] for shard in per_shard),
        "main_peak": max(shard["main"] for shard in per_shard),
        "workers_seen": len(peaks),
        "worker_peak": max(peaks, default=0),
        "worker_median": float(np.median(peaks)) if peaks else 0.0,
        "per_shard": per_shard,
        **totals,
    }


def row(r: dict) -> list[object]:
    return [
        f"{r['molecules']:,}",
        r["shards"],
        f"{r['prep_s']:.0f}",
        f"{r['featurize_s']:.0f}",
        f"{1000 * r['featurize_s'] / max(1, r['computed']):.1f}",
        f"{min(t['seconds'] for t in r['per_shard']):.0f}–{max(t['seconds'] for t in r['per_shard']):.0f}",
        mib(r["main_peak"]),
        r["workers_seen"],
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
    parser.add_argument("--one", action="store_true", help=argparse.SUPPRESS)  # a single size, as JSON
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    if args.one:
        print(json.dumps(measure(args.molecules[0], args.workers, args.downloads, args.keep)))
        return

    results = []
    for n in args.molecules:
        command = [sys.executable, __file__, "--one", "--molecules", str(n), "--workers", str(args.workers)]
        command += ["--downloads", args.downloads] + (["--keep", args.keep] if args.keep else [])
        out = subprocess.run(command, check=True, capture_output=True, text=True)
        results.append(json.loads(out.stdout.strip().splitlines()[-1]))
        print(f"done: {results[-1]}", file=sys.stderr, flush=True)
    print(f"\nZINC/MOSES, first N molecules, featurize with {args.workers} local Dask worker processes")
    print(f"Machine: {machine()}\n")
    print(table(HEADER, [row(r) for r in results]))
    print("\nPer shard (seconds, main process peak MiB, each worker's peak MiB):\n")
    for r in results:
        shards = [
            f"{t['seconds']:.0f} s, {mib(t['main'])}, [{', '.join(mib(p) for p in t['workers'])}]"
            for t in r["per_shard"]
        ]
        print(f"- {r['molecules']:,}: " + "; ".join(shards))


if __name__ == "__main__":
    main()
