"""The shard stage: standardized parts -> one Parquet file per shard, assigned by key hash.

A molecule's shard is ``blake2b(key) mod n_shards``, so the assignment is the same on every
machine and run, and a molecule that appears twice lands twice in the same shard: duplicates
are removed per shard (first row kept, the others rejected with the row they duplicate),
never needing the whole dataset in memory. Dask runs the two phases of this hash shuffle:
each part is split into per-shard buckets, then each shard gathers and sorts its buckets.
"""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

import dask
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from mmsa.data.prepare import read_parts
from mmsa.data.standardize import reject_frame
from mmsa.hashing import shard_of
from mmsa.io import write_parquet
from mmsa.parallel import compute

log = logging.getLogger(__name__)


def shard_path(folder: str | os.PathLike, shard: int) -> Path:
    """Where shard number ``shard`` of a dataset lives."""
    return Path(folder) / f"shard-{shard:05d}.parquet"


def _split_part(part: str, index: int, n_shards: int, buckets: str) -> None:
    table = pq.read_table(part)
    shards = np.array([shard_of(k, n_shards) for k in table.column("key").to_pylist()], dtype=np.int64)
    for shard in np.unique(shards):
        out = Path(buckets) / f"{shard:05d}" / f"part-{index:05d}.parquet"
        write_parquet(table.filter(pa.array(shards == shard)), out)


def _gather_shard(buckets: str, shard: int, schema: pa.Schema, out: str, dedupe: bool) -> pd.DataFrame:
    files = sorted((Path(buckets) / f"{shard:05d}").glob("part-*.parquet"))
    table = pa.concat_tables([pq.read_table(f) for f in files]) if files else schema.empty_table()
    frame = table.to_pandas().sort_values("row", kind="stable").reset_index(drop=True)
    rejects = reject_frame([])
    if dedupe:
        first_row = frame.groupby("key", sort=False)["row"].transform("min")
        duplicate = frame["row"] != first_row
        rejects = reject_frame(
            [
                {"row": r, "input": i, "stage": "shard", "reason": f"duplicate of row {f} (same key {k})"}
                for r, i, f, k in zip(
                    frame["row"][duplicate],
                    frame["input"][duplicate],
                    first_row[duplicate],
                    frame["key"][duplicate],
                    strict=True,
                )
            ]
        )
        frame = frame[~duplicate]
    write_parquet(pa.Table.from_pandas(frame, schema=schema, preserve_index=False), out)
    return rejects


def run_shard(
    standardized_dir: str | os.PathLike,
    out_dir: str | os.PathLike,
    rejects_path: str | os.PathLike,
    n_shards: int,
    dedupe: bool = True,
    workers: int = 1,
) -> dict[str, int]:
    """Write ``n_shards`` shard files into ``out_dir``; return row counts."""
    if n_shards < 1:
        raise ValueError(f"n_shards must be at least 1, got {n_shards}")
    parts = read_parts(standardized_dir)
    if not parts:
        raise FileNotFoundError(f"no standardized part files in {standardized_dir}")
    schema = pq.read_schema(parts[0]).remove_metadata()
    out_dir = Path(out_dir)
    buckets = out_dir / f".tmp-buckets-{os.getpid()}"
    try:
        compute(
            [dask.delayed(_split_part)(str(p), i, n_shards, str(buckets)) for i, p in enumerate(parts)],
            workers,
        )
        rejects = compute(
            [
                dask.delayed(_gather_shard)(str(buckets), s, schema, str(shard_path(out_dir, s)), dedupe)
                for s in range(n_shards)
            ],
            workers,
        )
    finally:
        shutil.rmtree(buckets, ignore_errors=True)
    all_rejects = pd.concat([reject_frame([]), *rejects], ignore_index=True).sort_values("row")
    write_parquet(pa.Table.from_pandas(all_rejects, preserve_index=False), rejects_path)
    kept = sum(pq.read_metadata(shard_path(out_dir, s)).num_rows for s in range(n_shards))
    log.info(
        "sharded into %d shards: %d molecules kept, %d duplicates rejected", n_shards, kept, len(all_rejects)
    )
    return {"kept": kept, "rejected": len(all_rejects)}
