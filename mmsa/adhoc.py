"""Featurize an arbitrary SMILES file through the same stages and cache as the pipeline.

Used by ``mmsa embed`` and ``mmsa predict``: the file is read by the pipeline's own CSV reader
(:func:`mmsa.data.fetch.fetch_file`), its rows are standardized, sharded into one shard and
featurized into the shared feature cache (molecules seen before are reused); bad rows come back
as a rejects table with reasons, and the pipeline's accounting checks that every row is in one
of the two, exactly as in a pipeline run.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow.parquet as pq

from mmsa.data.fetch import fetch_file, file_spec
from mmsa.data.shard import run_shard, shard_path
from mmsa.data.standardize_stage import run_standardize
from mmsa.features.cache import FeatureCache
from mmsa.features.featurize import run_featurize
from mmsa.features.loader import FeatureStore, read_manifests
from mmsa.stage_settings import feature_settings, standardize_options
from mmsa.stages import account

STAGES = ("standardize", "shard", "featurize")


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
    """Standardize and featurize every row of a CSV file; nothing is dropped silently.

    A file that cannot be read as a table with a SMILES column and data rows raises
    :class:`mmsa.errors.InputError`; a row lost between the stages raises
    :class:`mmsa.stages.AccountingError` (a bug).
    """
    work = Path(workdir)
    rejects = {stage: work / f"rejects-{stage}.parquet" for stage in STAGES}
    spec = file_spec(csv_path, smiles_column)
    fetch_file(csv_path, spec, work / "raw.parquet")
    run_standardize(
        work / "raw.parquet",
        work / "standardized",
        rejects["standardize"],
        spec,
        standardize_options(config),
        workers=threads,
    )
    run_shard(work / "standardized", work / "shards", rejects["shard"], 1, duplicates=None)
    cache = FeatureCache(config["cache_dir"], feature_settings(config))
    run_featurize(
        shard_path(work / "shards", 0),
        work / "manifest.parquet",
        rejects["featurize"],
        config["cache_dir"],
        feature_settings(config),
        workers=threads,
        chunk_size=config["featurize"]["chunk_size"],
    )
    account(
        str(csv_path),
        work / "raw.parquet",
        list(rejects.values()),
        [work / "manifest.parquet"],
        work / "accounting.json",
        work / "rejects.csv",
    )
    manifest = read_manifests([work / "manifest.parquet"])
    rows = pq.read_table(shard_path(work / "shards", 0), columns=["row", "input", "key"]).to_pandas()
    rows = rows[rows["row"].isin(set(manifest["row"]))].sort_values("row").reset_index(drop=True)
    rejected = pd.concat([pq.read_table(p).to_pandas() for p in rejects.values()], ignore_index=True)
    return PreparedMolecules(
        rows, rejected.sort_values("row").reset_index(drop=True), FeatureStore(cache, manifest)
    )
