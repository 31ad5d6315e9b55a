"""Featurize an arbitrary SMILES file through the same stages and cache as the pipeline.

Used by ``mmsa embed`` and ``mmsa predict``: the file is read by the pipeline's own CSV reader
(:func:`mmsa.data.raw_table.fetch_file`), then the pipeline's own stage functions
(:mod:`mmsa.stages`) standardize it, shard it into one shard and featurize it into the shared
feature cache (molecules seen before are reused), all with the user's config; bad rows come back
as a rejects table with reasons, and the pipeline's accounting checks that every row is in one
of the two, exactly as in a pipeline run.

Cheap things first: the stages see each distinct SMILES cell once (a row's fate depends on its
cell alone), and every row then takes the result of its cell, so a file of 20,000 copies of
one molecule standardizes one molecule, not 20,000. The models, too, need each distinct
molecule once (:meth:`PreparedMolecules.distinct_keys`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from mmsa.data.columns import FETCH_ERROR, ROW, SMILES, SMILES_OPTION
from mmsa.data.key_shards import shard_path
from mmsa.data.raw_table import fetch_file
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

    def distinct_keys(self) -> tuple[list[str], np.ndarray]:
        """The distinct keys of :attr:`rows`, in the order first seen, and for each row its key's
        position among them: a model applied once to each key gives every row its output as
        ``outputs[positions]`` (a molecule's output depends on that molecule alone)."""
        positions, keys = pd.factorize(self.rows["key"])
        return keys.tolist(), positions


def input_config(config: dict[str, Any], smiles_column: str) -> dict[str, Any]:
    """``config`` with the file as the custom dataset :data:`INPUT`: its SMILES column and no
    tasks, one shard, and no de-duplication by the shard stage (every row of the file gets its own
    output row)."""
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

    Each distinct SMILES cell goes through the stages once (:func:`_distinct_cells`); the rows
    and rejects returned hold every row of the file, numbered as in the file. A file that cannot
    be read as a table with a SMILES column and data rows raises
    :class:`mmsa.runtime.errors.InputError`; a row lost between the stages raises
    :class:`mmsa.stages.account.AccountingError` (a bug).
    """
    work = Path(workdir)
    config = input_config(config, smiles_column)
    rejects = {stage: work / f"rejects-{stage}.parquet" for stage in STAGES}
    shard_file = shard_path(work / "shards", 0)
    fetch_file(csv_path, dataset_spec(config, INPUT), work / "raw.parquet", SMILES_OPTION)
    cells = _distinct_cells(work / "raw.parquet", work / "distinct.parquet")
    standardize(
        config, INPUT, work / "distinct.parquet", work / "standardized", rejects["standardize"], threads
    )
    shard(config, INPUT, work / "standardized", work / "shards", rejects["shard"], threads)
    counts = featurize(config, shard_file, work / "manifest.parquet", rejects["featurize"], threads)
    account(
        f"{csv_path} (distinct SMILES cells)",
        work / "distinct.parquet",
        list(rejects.values()),
        [work / "manifest.parquet"],
        work / "accounting.json",
        work / "rejects.csv",
    )
    store = feature_store(config, [work / "manifest.parquet"])
    manifest = read_manifests([work / "manifest.parquet"])
    rows = pq.read_table(shard_file, columns=["row", "input", "key"]).to_pandas()
    rows = rows[rows["row"].isin(set(manifest["row"]))]
    rejected = pd.concat([pq.read_table(p).to_pandas() for p in rejects.values()], ignore_index=True)
    return PreparedMolecules(
        _every_row(rows, cells), _every_row(rejected, cells), store, counts["computed"], counts["reused"]
    )


def _distinct_cells(raw: str | os.PathLike, out: str | os.PathLike) -> np.ndarray:
    """Write the first row of each distinct SMILES cell of the fetched table ``raw`` to ``out``,
    numbered anew from 0; return each row of ``raw``'s row in ``out``.

    Cells are compared as the exact text read, with the reader's error (a row the reader could
    not read is only ever merged with one that failed alike), so rows merged here would have
    gone through the stages alike.
    """
    table = pq.read_table(raw)
    frame = table.select([SMILES, FETCH_ERROR]).to_pandas()
    cells = frame.groupby([SMILES, FETCH_ERROR], dropna=False, sort=False).ngroup().to_numpy()
    _, first = np.unique(cells, return_index=True)  # ngroup numbers groups as first seen
    distinct = table.take(first).set_column(0, ROW, pa.array(np.arange(len(first)), pa.int64()))
    pq.write_table(distinct, out)
    return cells


def _every_row(frame: pd.DataFrame, cells: np.ndarray) -> pd.DataFrame:
    """``frame``, a table of rows of the distinct cells, with one row for each input row of those
    cells instead (its own ``row`` number), in row order."""
    rows = pd.DataFrame({ROW: np.arange(len(cells)), "cell": cells})
    return rows.merge(frame.rename(columns={ROW: "cell"}), on="cell").drop(columns="cell")  # keeps row order
