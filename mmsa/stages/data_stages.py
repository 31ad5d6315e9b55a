"""The data stages of one dataset run in this process, without a workflow."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from mmsa.data.key_shards import shard_path
from mmsa.plan.config_slices import placement
from mmsa.plan.datasets import n_shards
from mmsa.stages.account import account
from mmsa.stages.featurize import featurize
from mmsa.stages.fetch import fetch
from mmsa.stages.shard import shard
from mmsa.stages.standardize import standardize


def run_data_stages(
    config: dict[str, Any], dataset: str, folder: str | os.PathLike, threads: int = 1
) -> dict:
    """fetch -> standardize -> shard -> featurize -> account into ``folder``, in this process.

    What the Snakemake rules do for one dataset, for benchmarks and tests that need featurized
    data without a workflow run. Layout: ``shards/``, ``man-<shard>.parquet`` (featurize
    manifests), ``rej-*.parquet``, ``accounting.json``, ``rejects.csv``. Returns the accounting
    summary with the featurize counts under ``featurize``. The data stages run on the Dask
    cluster of ``config``'s ``dask.scheduler_address`` when it is set.
    """
    d = Path(folder)
    fetch(config, dataset, d / "raw.parquet")
    standardize(
        config,
        dataset,
        d / "raw.parquet",
        d / "std",
        d / "rej-std.parquet",
        threads=threads,
        **placement(config, "standardize"),
    )
    shard(
        config,
        dataset,
        d / "std",
        d / "shards",
        d / "rej-shard.parquet",
        threads=threads,
        **placement(config, "shard"),
    )
    shards = range(n_shards(config, dataset))
    where = placement(config, "featurize")
    counts = [
        featurize(
            config,
            shard_path(d / "shards", s),
            d / f"man-{s}.parquet",
            d / f"rej-feat-{s}.parquet",
            threads,
            **where,
        )
        for s in shards
    ]
    summary = account(
        dataset,
        d / "raw.parquet",
        [d / "rej-std.parquet", d / "rej-shard.parquet", *[d / f"rej-feat-{s}.parquet" for s in shards]],
        [d / f"man-{s}.parquet" for s in shards],
        d / "accounting.json",
        d / "rejects.csv",
    )
    return {**summary, "featurize": counts}
