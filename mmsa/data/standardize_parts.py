"""The standardize stage: raw Parquet rows -> standardized part files + a rejects table.

The raw table's row groups are processed as independent Dask tasks; each writes its own part
file atomically, so memory stays flat whatever the dataset's size and a killed run leaves no
half-written part under its final name.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

import dask
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from mmsa.data.columns import RESERVED
from mmsa.data.registry import DatasetSpec
from mmsa.data.stage_tables import RAW, RAW_COLUMNS, checked_table
from mmsa.data.standardized_molecules import StandardizeOptions, reject_frame, standardize_frame
from mmsa.runtime.io import atomic_path, write_parquet
from mmsa.runtime.parallel import compute

log = logging.getLogger(__name__)


def _standardize_row_group(
    raw: str, group: int, out: str, tasks: list[str], spec: DatasetSpec, options: dict[str, Any]
) -> tuple[int, pd.DataFrame]:
    frame = pq.ParquetFile(raw).read_row_group(group).to_pandas()
    kept, rejects = standardize_frame(frame, tasks, spec, StandardizeOptions.from_dict(options))
    write_parquet(pa.Table.from_pandas(kept, preserve_index=False), out)
    return len(frame), rejects


def task_columns(raw_path: str | os.PathLike) -> list[str]:
    """Task names of a fetched table: every column but the reserved ones (row numbers, SMILES)."""
    return [n for n in pq.read_schema(raw_path).names if n not in RESERVED]


def run_standardize(
    raw_path: str | os.PathLike,
    out_dir: str | os.PathLike,
    rejects_path: str | os.PathLike,
    spec: DatasetSpec,
    options: StandardizeOptions,
    workers: int = 1,
    scheduler_address: str | None = None,
) -> dict[str, int]:
    """Standardize every row of ``raw_path``, a table of dataset ``spec`` (whose label transform
    and task type say how labels are read); return ``{"rows": .., "kept": .., "rejected": ..}``.
    Row groups run on ``workers`` local processes, or on the Dask cluster at
    ``scheduler_address`` (whose workers write the part files, so they must see ``out_dir``)."""
    tasks = task_columns(checked_table(raw_path, RAW_COLUMNS, RAW))
    groups = pq.ParquetFile(raw_path).num_row_groups
    with atomic_path(out_dir) as tmp:
        tmp.mkdir(parents=True)
        jobs = [
            dask.delayed(_standardize_row_group)(
                str(raw_path),
                g,
                str(tmp / f"part-{g:05d}.parquet"),
                tasks,
                spec,
                options.to_dict(),
            )
            for g in range(groups)
        ]
        results = compute(jobs, workers, scheduler_address)
        (tmp / "_options.json").write_text(json.dumps(options.to_dict(), indent=1))
    rows = sum(n for n, _ in results)
    rejects = pd.concat([reject_frame([])] + [r for _, r in results], ignore_index=True)
    write_parquet(pa.Table.from_pandas(rejects, preserve_index=False), rejects_path)
    counts = {"rows": rows, "kept": rows - len(rejects), "rejected": len(rejects)}
    log.info(
        "standardized %s: %d rows -> %d kept, %d rejected (options %s)",
        Path(raw_path).parent.name,
        rows,
        counts["kept"],
        counts["rejected"],
        options.to_dict(),
    )
    return counts
