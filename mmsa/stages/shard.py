"""The shard stage: standardized rows to one Parquet file per shard."""

from __future__ import annotations

import os
from typing import Any

from mmsa.data.key_shards import run_shard
from mmsa.plan.datasets import duplicate_policy, n_shards
from mmsa.runtime.io import atomic_path


def shard(
    config: dict[str, Any],
    dataset: str,
    standardized: str | os.PathLike,
    out_dir: str | os.PathLike,
    rejects: str | os.PathLike,
    threads: int = 1,
    scheduler_address: str | None = None,
    holdouts: dict[str, str | os.PathLike] | None = None,
) -> dict:
    """Shard the standardized rows of ``dataset`` (on the Dask cluster at ``scheduler_address``
    if given), without the molecules of the standardized datasets in ``holdouts`` (name ->
    folder; see :func:`mmsa.plan.datasets.holdout_datasets`)."""
    with atomic_path(out_dir) as tmp:
        return run_shard(
            standardized,
            tmp,
            rejects,
            n_shards(config, dataset),
            duplicate_policy(config),
            workers=threads,
            scheduler_address=scheduler_address,
            holdouts=holdouts,
        )
