"""Pretraining stream: peak memory of one epoch of ``ShardBatches`` by corpus size.

Streams one epoch of the batches pretraining reads (``mmsa.train.stream``: shards in seeded
order, image chunks shuffled, molecules shuffled within windows, read from the feature cache)
over the featurized corpora that ``benchmarks/featurize_scaling.py --keep DIR`` leaves in
``DIR/<N>/`` (manifests ``man-<shard>.parquet`` and their feature cache), through the loader
pretraining uses (``batch_loader``, ``--loader-workers`` as ``pretrain.settings.loader_workers``).
Each size runs in its own subprocess; its peak memory is ``VmHWM`` minus the peak before the
epoch (imports and the first manifest), and each loader worker's own peak. Prints a Markdown
table:

    python benchmarks/stream_memory.py --data DIR [--molecules 10000 100000]

Goal: peak memory flat in the corpus size (one shard's keys and one window of molecules held
at a time).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from _common import PeakMemory, high_water_mark, machine, mib, table

from mmsa.features.cache import FeatureCache
from mmsa.plan.config import validate_config
from mmsa.stages.inputs import feature_settings
from mmsa.train.stream import ShardBatches, batch_loader


def measure(folder: Path, batch_size: int, window: int, workers: int) -> dict:
    """One epoch over the manifests in ``folder``, in this process."""
    manifests = sorted(folder.glob("man-*.parquet"))
    config = validate_config({"cache_dir": str(folder / "cache")})  # the settings it was featurized with
    cache = FeatureCache(config["cache_dir"], feature_settings(config))
    dataset = ShardBatches(manifests, cache, batch_size, seed=0, window=window)
    expected = dataset.batches_per_epoch(workers)
    before = high_water_mark(os.getpid()) or 0
    molecules = batches = 0
    with PeakMemory() as memory:
        start = time.perf_counter()
        for batch in batch_loader(dataset, workers):
            molecules += batch.num_graphs
            batches += 1
        seconds = time.perf_counter() - start
    if batches != expected:
        raise RuntimeError(f"{folder}: {batches} batches streamed, {expected} expected")
    return {
        "shards": len(manifests),
        "molecules": molecules,
        "batches": batches,
        "seconds": seconds,
        "before": before,
        "main_peak": memory.main,
        "worker_peak": max(memory.worker_peaks(), default=0),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True, help="featurize_scaling.py's --keep folder")
    parser.add_argument("--molecules", type=int, nargs="+", default=[10000, 100000], help="sizes in DATA")
    parser.add_argument("--batch-size", type=int, default=64, help="pretrain.settings.batch_size (64)")
    parser.add_argument("--window", type=int, default=8, help="pretrain.settings.shuffle_window (8)")
    parser.add_argument("--loader-workers", type=int, nargs="+", default=[0, 2])
    parser.add_argument("--one", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        workers = args.loader_workers[0]
        print(json.dumps(measure(Path(args.one), args.batch_size, args.window, workers)))
        return

    rows = []
    for n in args.molecules:
        for workers in args.loader_workers:
            command = [sys.executable, __file__, *sys.argv[1:], "--one", str(Path(args.data) / str(n))]
            command += ["--loader-workers", str(workers)]
            done = subprocess.run(command, check=True, capture_output=True, text=True)
            r = json.loads(done.stdout.strip().splitlines()[-1])
            print(f"done: {n} {workers} {r}", file=sys.stderr, flush=True)
            rows.append(
                [
                    f"{r['molecules']:,}",
                    r["shards"],
                    workers,
                    f"{r['batches']:,}",
                    f"{r['seconds']:.0f}",
                    f"{r['molecules'] / r['seconds']:,.0f}",
                    mib(r["before"]),
                    mib(r["main_peak"]),
                    mib(r["main_peak"] - r["before"]),
                    mib(r["worker_peak"]) if workers else "",
                ]
            )
    print(
        f"\nOne epoch of ShardBatches (batch {args.batch_size}, shuffle window {args.window}) over the "
        "first N ZINC/MOSES molecules featurized by featurize_scaling.py"
    )
    print(f"Machine: {machine()}\n")
    header = [
        "molecules streamed",
        "shards",
        "loader workers",
        "batches",
        "s",
        "molecules/s",
        "main MiB before epoch",
        "main peak MiB",
        "main peak - before",
        "loader worker peak MiB",
    ]
    print(table(header, rows))


if __name__ == "__main__":
    main()
