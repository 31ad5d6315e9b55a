"""The shard stage: standardized parts -> one Parquet file per shard, assigned by key hash.

A molecule's shard is ``blake2b(key) mod n_shards``, so the assignment is the same on every
machine and run, and a molecule that appears twice lands twice in the same shard: duplicates
are removed per shard, never needing the whole dataset in memory. Dask runs the two phases of
this hash shuffle: each part is split into per-shard buckets, then each shard gathers and sorts
its buckets.

Rows with the same key form a duplicate group. Under the ``first`` policy the group's first
row is kept as it is. Under ``reject`` a group whose present labels disagree is rejected whole
(which label is right cannot be told), and an agreeing group keeps its first row with the
union of the group's labels. Every rejected row carries a reason starting with a fixed prefix,
so :func:`duplicate_counts` can count groups and rows from the rejects table alone.

The pretraining dataset is also held out from the finetuning datasets: every row whose key is a
molecule of one of them is rejected (before de-duplication, so every copy goes), with a reason
naming those datasets, so that no test molecule is seen in pretraining (:func:`holdout_counts`).
"""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path
from typing import Any

import dask
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from mmsa.data.labelled_molecules import label_columns
from mmsa.data.stage_tables import standardized_parts
from mmsa.data.standardized_molecules import reject_frame
from mmsa.runtime.hashing import shard_of
from mmsa.runtime.io import write_parquet
from mmsa.runtime.parallel import compute

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


DUPLICATE_POLICIES = ("first", "reject")
DUPLICATE_REASON = "duplicate of row"
CONFLICT_REASON = "conflicting labels among duplicate rows"


def _number(value: float) -> str:
    """A label as a reason shows it: short ("1", "0.5") but never rounded into another value."""
    short = f"{value:g}"
    return short if float(short) == value else repr(float(value))


def label_conflicts(group: pd.DataFrame, tasks: list[str]) -> str:
    """The tasks on which a duplicate group's present labels differ (``p_np 1 vs 0``); '' if none.

    Only present values are compared, by exact equality: a missing label (NaN) says nothing
    against a row that has one, so it never conflicts.
    """
    parts = []
    for task in tasks:
        values = group[task].dropna().unique()
        if len(values) > 1:
            parts.append(f"{task} {' vs '.join(_number(v) for v in values)}")
    return "; ".join(parts)


def _dedupe(frame: pd.DataFrame, policy: str) -> tuple[pd.DataFrame, pd.DataFrame, int]:
    """One row per key under ``policy``: the kept rows, the rejects and how many labels were filled in.

    ``frame`` is sorted by row, so a key's first occurrence is its earliest row. Only keys that
    repeat are grouped, and the work is vectorized but for building the reasons of conflicting
    groups, which are few.
    """
    tasks = label_columns(frame)
    frame = frame.copy()
    repeated = frame[frame["key"].duplicated(keep=False)]
    groups = repeated.groupby("key", sort=False)
    first = ~repeated["key"].duplicated()
    reasons = {key: f"{DUPLICATE_REASON} {row} (same key {key})" for key, row in groups["row"].min().items()}
    conflicting = pd.Series(False, index=repeated.index)
    filled = 0
    if policy == "reject" and tasks:
        spread = groups[tasks].nunique()  # distinct present values; NaN is not counted
        disagreeing = spread.index[(spread > 1).any(axis=1)]
        for key in disagreeing:
            group = groups.get_group(key)
            rows = ", ".join(map(str, group["row"]))
            reasons[key] = f"{CONFLICT_REASON} {rows} (same key {key}): {label_conflicts(group, tasks)}"
        conflicting = repeated["key"].isin(disagreeing)
        kept = repeated.index[first & ~conflicting]
        merged = groups[tasks].first().loc[frame.loc[kept, "key"]].to_numpy()  # first present value
        filled = int(pd.notna(merged).sum() - frame.loc[kept, tasks].notna().to_numpy().sum())
        frame.loc[kept, tasks] = merged
    rejected = repeated[~first | conflicting]
    rejects = reject_frame(
        [
            {"row": r, "input": i, "stage": "shard", "reason": reasons[k]}
            for r, i, k in zip(rejected["row"], rejected["input"], rejected["key"], strict=True)
        ]
    )
    return frame.drop(index=rejected.index), rejects, filled


def duplicate_counts(rejects: pd.DataFrame) -> dict[str, int]:
    """Duplicate groups and rejected rows, counted from the shard stage's reasons.

    Counted from the rejects table rather than carried beside it, so the numbers cannot disagree
    with the rows. Every row of a group shares one reason, which names the group's key (and, for
    a conflict, its rows), so distinct reasons are distinct groups.
    """
    reasons = rejects.loc[rejects["stage"] == "shard", "reason"]
    duplicate = reasons[reasons.str.startswith(DUPLICATE_REASON)]
    conflicting = reasons[reasons.str.startswith(CONFLICT_REASON)]
    return {
        "duplicate_groups": duplicate.nunique() + conflicting.nunique(),
        "duplicate_rows_rejected": len(duplicate),
        "conflicting_groups": conflicting.nunique(),
        "conflicting_rows_rejected": len(conflicting),
    }


HOLDOUT_REASON = "molecule of finetuning dataset"


def holdout_keys(folders: dict[str, str | os.PathLike]) -> dict[str, str]:
    """Each key of the standardized datasets in ``folders`` (name -> folder), with the names of
    the datasets that hold it ("bace, bbbp"), as a holdout reason names them."""
    owners: dict[str, list[str]] = {}
    for name, folder in sorted(folders.items()):
        keys = {
            k
            for part in standardized_parts(folder, f"holdout {name}:")
            for k in pq.read_table(part, columns=["key"])["key"].to_pylist()
        }
        for key in keys:
            owners.setdefault(key, []).append(name)
    return {key: ", ".join(names) for key, names in owners.items()}


def holdout_counts(rejects: pd.DataFrame) -> dict[str, Any]:
    """Rows rejected as finetuning molecules, in all and per finetuning dataset (a row whose
    molecule is in two datasets counts for each), from the shard stage's reasons."""
    reasons = rejects.loc[rejects["stage"] == "shard", "reason"]
    held = reasons[reasons.str.startswith(HOLDOUT_REASON + " ")]
    names = held.str.slice(len(HOLDOUT_REASON) + 1).str.split(" (", n=1, regex=False).str[0]
    per_dataset = names.str.split(", ", regex=False).explode().value_counts()
    return {
        "finetune_molecules_rejected": len(held),
        "finetune_molecules_by_dataset": {k: int(v) for k, v in sorted(per_dataset.items())},
    }


def _hold_out(frame: pd.DataFrame, holdouts: dict[str, str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``frame`` without the rows whose key is in ``holdouts``, and those rows as rejects."""
    owners = frame["key"].map(holdouts)
    held = frame[owners.notna()]
    rejects = reject_frame(
        [
            {"row": r, "input": i, "stage": "shard", "reason": f"{HOLDOUT_REASON} {owners[j]} (key {k})"}
            for j, r, i, k in zip(held.index, held["row"], held["input"], held["key"], strict=True)
        ]
    )
    return frame[owners.isna()].reset_index(drop=True), rejects


def _gather_shard(
    buckets: str, shard: int, schema: pa.Schema, out: str, duplicates: str | None, holdouts: dict[str, str]
) -> tuple[pd.DataFrame, int]:
    files = sorted((Path(buckets) / f"{shard:05d}").glob("part-*.parquet"))
    table = pa.concat_tables([pq.read_table(f) for f in files]) if files else schema.empty_table()
    frame = table.to_pandas().sort_values("row", kind="stable").reset_index(drop=True)
    frame, held = _hold_out(frame, holdouts)
    duplicate_rejects, filled = reject_frame([]), 0
    if duplicates is not None:
        frame, duplicate_rejects, filled = _dedupe(frame, duplicates)
    write_parquet(pa.Table.from_pandas(frame, schema=schema, preserve_index=False), out)
    return pd.concat([held, duplicate_rejects], ignore_index=True), filled


def run_shard(
    standardized_dir: str | os.PathLike,
    out_dir: str | os.PathLike,
    rejects_path: str | os.PathLike,
    n_shards: int,
    duplicates: str | None,
    workers: int = 1,
    scheduler_address: str | None = None,
    holdouts: dict[str, str | os.PathLike] | None = None,
) -> dict[str, Any]:
    """Write ``n_shards`` shard files into ``out_dir``; return row and duplicate counts.

    Both phases run on ``workers`` local processes, or on the Dask cluster at
    ``scheduler_address`` (whose workers write the buckets and shards, so they must see
    ``out_dir``).

    ``duplicates`` is the policy for rows with the same key (one of :data:`DUPLICATE_POLICIES`,
    see the module docstring), or None to keep every row. ``holdouts`` (finetuning dataset name
    -> its standardized folder) removes their molecules; the counts then say how many rows that
    cost (:func:`holdout_counts`).
    """
    if n_shards < 1:
        raise ValueError(f"n_shards must be at least 1, got {n_shards}")
    if duplicates is not None and duplicates not in DUPLICATE_POLICIES:
        raise ValueError(f"duplicates must be one of {DUPLICATE_POLICIES} or None, got {duplicates!r}")
    held = holdout_keys(holdouts or {})  # first: a wrong hold-out folder stops the job before any work
    parts = standardized_parts(standardized_dir)
    out_dir = Path(out_dir)
    held_keys: list[dict[str, str]] = [{} for _ in range(n_shards)]
    for key, owners in held.items():
        held_keys[shard_of(key, n_shards)][key] = owners  # each shard task gets its own keys
    results = _split_and_gather(parts, out_dir, n_shards, duplicates, held_keys, workers, scheduler_address)
    all_rejects = pd.concat([reject_frame([]), *(r for r, _ in results)], ignore_index=True)
    all_rejects = all_rejects.sort_values("row")
    write_parquet(pa.Table.from_pandas(all_rejects, preserve_index=False), rejects_path)
    kept = sum(pq.read_metadata(shard_path(out_dir, s)).num_rows for s in range(n_shards))
    counts = {"kept": kept, "rejected": len(all_rejects), **duplicate_counts(all_rejects)}
    counts["labels_filled"] = sum(f for _, f in results)
    if holdouts is not None:
        counts.update(holdout_counts(all_rejects))
        log.info(
            "held out from %s: %d rows %s",
            ", ".join(sorted(holdouts)) or "no dataset",
            counts["finetune_molecules_rejected"],
            counts["finetune_molecules_by_dataset"],
        )
    _log_counts(counts, n_shards, duplicates)
    return counts


def _split_and_gather(
    parts: list[Path],
    out_dir: Path,
    n_shards: int,
    duplicates: str | None,
    held_keys: list[dict[str, str]],
    workers: int,
    scheduler_address: str | None,
) -> list[tuple[pd.DataFrame, int]]:
    """Phase 1 splits every part file into per-shard buckets; phase 2 gathers each shard's
    buckets into its file (de-duplicated, holdouts removed). Each shard's rejects and filled labels."""
    schema = pq.read_schema(parts[0]).remove_metadata()
    buckets = out_dir / f".tmp-buckets-{os.getpid()}"
    try:
        compute(
            [dask.delayed(_split_part)(str(p), i, n_shards, str(buckets)) for i, p in enumerate(parts)],
            workers,
            scheduler_address,
        )
        return compute(
            [
                dask.delayed(_gather_shard)(
                    str(buckets), s, schema, str(shard_path(out_dir, s)), duplicates, held_keys[s]
                )
                for s in range(n_shards)
            ],
            workers,
            scheduler_address,
        )
    finally:
        shutil.rmtree(buckets, ignore_errors=True)


def _log_counts(counts: dict[str, Any], n_shards: int, duplicates: str | None) -> None:
    log.info(
        "sharded into %d shards: %d molecules kept, %d rejected; %d duplicate groups: %d rows rejected "
        "as duplicates, %d groups with conflicting labels rejected whole (%d rows), %d labels filled in "
        "from later duplicates (policy %s)",
        n_shards,
        counts["kept"],
        counts["rejected"],
        counts["duplicate_groups"],
        counts["duplicate_rows_rejected"],
        counts["conflicting_groups"],
        counts["conflicting_rows_rejected"],
        counts["labels_filled"],
        duplicates,
    )
