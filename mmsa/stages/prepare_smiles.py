"""Featurize an arbitrary SMILES file through the same stages and cache as the pipeline.

Used by ``mmsa embed`` and ``mmsa predict``: the file is read by the pipeline's own CSV reader
(:func:`mmsa.data.fetch.fetch_file`), then the pipeline's own stage functions
(:mod:`mmsa.stages`) standardize it, shard it into one shard and featurize it into the shared
feature cache (molecules seen before are reused), all with the user's config; bad rows come back
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

from mmsa.data.fetch import fetch_file
from mmsa.data.shard import shard_path
from mmsa.features.loader import FeatureStore, read_manifests
from mmsa.plan.config import validate_config
from mmsa.plan.datasets import dataset_spec
from mmsa.stages.account import account
from mmsa.stages.featurize import featurize
from mmsa.stages.inputs import feature_store
from mmsa.stages.shard import shard
from mmsa.stages.standardize import standardize

INPUT = "input"  # the dataset name the file's rows go by in the stages' config
STAGES = ("standardize", "shard", "featurize")


@dataclass
class PreparedMolecules:
    """Featurized rows (``row``, ``input``, ``key``), rejected rows, and their features; with
    ``computed`` and ``reused``, how many molecules featurization computed and found in the cache."""

    rows: pd.DataFrame
    rejects: pd.DataFrame
    store: FeatureStore
    computed: int = 0
    reused: int = 0


def input_config(config: dict[str, Any], smiles_column: str) -> dict[str, Any]:
    """``config`` with the file as the custom dataset :data:`INPUT`: its SMILES column and no
    tasks, one shard, and no de-duplication (every row of the file gets its own output row)."""
    data = config["data"]
    custom = {"source": "local", "smiles_column": smiles_column, "task_type": "none"}
    return validate_config(
        {
            **config,
            "data": {
                **data,
                "custom": {**data["custom"], INPUT: custom},
                "shards": {**data["shards"], INPUT: 1},
                "dedupe": False,
            },
        }
    )


def prepare_smiles_file(
    config: dict[str, Any],
    csv_path: str | os.PathLike,
    smiles_column: str,
    workdir: str | os.PathLike,
    threads: int = 1,
) -> PreparedMolecules:
    """Standardize and featurize every row of a CSV file; nothing is dropped silently.

    A file that cannot be read as a table with a SMILES column and data rows raises
    :class:`mmsa.runtime.errors.InputError`; a row lost between the stages raises
    :class:`mmsa.stages.account.AccountingError` (a bug).
    """
    work = Path(workdir)
    config = input_config(config, smiles_column)
    rejects = {stage: work / f"rejects-{stage}.parquet" for stage in STAGES}
    shard_file = shard_path(work / "shards", 0)
    fetch_file(csv_path, dataset_spec(config, INPUT), work / "raw.parquet")
    standardize(config, INPUT, work / "raw.parquet", work / "standardized", rejects["standardize"], threads)
    shard(config, INPUT, work / "standardized", work / "shards", rejects["shard"], threads)
    counts = featurize(config, shard_file, work / "manifest.parquet", rejects["featurize"], threads)
    account(
        str(csv_path),
        work / "raw.parquet",
        list(rejects.values()),
        [work / "manifest.parquet"],
        work / "accounting.json",
        work / "rejects.csv",
    )
    store = feature_store(config, [work / "manifest.parquet"])
    manifest = read_manifests([work / "manifest.parquet"])
    rows = pq.read_table(shard_file, columns=["row", "input", "key"]).to_pandas()
    rows = rows[rows["row"].isin(set(manifest["row"]))].sort_values("row").reset_index(drop=True)
    rejected = pd.concat([pq.read_table(p).to_pandas() for p in rejects.values()], ignore_index=True)
    rejected = rejected.sort_values("row").reset_index(drop=True)
    return PreparedMolecules(rows, rejected, store, counts["computed"], counts["reused"])
