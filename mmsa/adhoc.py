"""Featurize an arbitrary SMILES file through the same stages and cache as the pipeline.

Used by ``mmsa embed`` and ``mmsa predict``: the file's rows are standardized, sharded into one
shard and featurized into the shared feature cache (molecules seen before are reused); bad
rows come back as a rejects table with reasons, exactly as in a pipeline run.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from mmsa.data.prepare import run_standardize
from mmsa.data.shard import run_shard, shard_path
from mmsa.features.cache import FeatureCache
from mmsa.features.featurize import run_featurize
from mmsa.features.loader import FeatureStore, read_manifests
from mmsa.io import write_parquet
from mmsa.plan import feature_settings, standardize_options


@dataclass
class PreparedMolecules:
    """Featurized rows (``row``, ``input``, ``key``), rejected rows, and their features."""

    rows: pd.DataFrame
    rejects: pd.DataFrame
    store: FeatureStore


def prepare_smiles_file(
    config: dict[str, Any],
    csv_path: str | os.PathLike,
    smiles_column: str,
    workdir: str | os.PathLike,
    threads: int = 1,
) -> PreparedMolecules:
    """Standardize and featurize every row of a CSV file; nothing is dropped silently."""
    work = Path(workdir)
    frame = pd.read_csv(csv_path, dtype=str, keep_default_na=False)
    if smiles_column not in frame.columns:
        raise ValueError(f"{csv_path}: no column {smiles_column!r} (columns: {list(frame.columns)})")
    raw = pd.DataFrame({"row": range(len(frame)), "smiles": frame[smiles_column]})
    write_parquet(pa.Table.from_pandas(raw, preserve_index=False), work / "raw.parquet")
    run_standardize(
        work / "raw.parquet",
        work / "standardized",
        work / "rejects-standardize.parquet",
        "float",
        standardize_options(config),
        workers=threads,
    )
    run_shard(work / "standardized", work / "shards", work / "rejects-shard.parquet", 1, duplicates=None)
    cache = FeatureCache(config["cache_dir"], feature_settings(config))
    run_featurize(
        shard_path(work / "shards", 0),
        work / "manifest.parquet",
        work / "rejects-featurize.parquet",
        config["cache_dir"],
        feature_settings(config),
        workers=threads,
        chunk_size=config["featurize"]["chunk_size"],
    )
    manifest = read_manifests([work / "manifest.parquet"])
    rows = pq.read_table(shard_path(work / "shards", 0), columns=["row", "input", "key"]).to_pandas()
    rows = rows[rows["row"].isin(set(manifest["row"]))].sort_values("row").reset_index(drop=True)
    rejects = pd.concat(
        [
            pq.read_table(work / f"rejects-{stage}.parquet").to_pandas()
            for stage in ("standardize", "shard", "featurize")
        ],
        ignore_index=True,
    )
    return PreparedMolecules(
        rows, rejects.sort_values("row").reset_index(drop=True), FeatureStore(cache, manifest)
    )
