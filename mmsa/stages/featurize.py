"""The featurize stage: one shard into the shared feature cache and a manifest."""

from __future__ import annotations

import os
from typing import Any

from mmsa.features.shard_featurizer import run_featurize
from mmsa.stages.inputs import feature_settings


def featurize(
    config: dict[str, Any],
    shard_file: str | os.PathLike,
    manifest: str | os.PathLike,
    rejects: str | os.PathLike,
    threads: int = 1,
    scheduler_address: str | None = None,
) -> dict:
    """Featurize one shard into the shared cache (on the Dask cluster at ``scheduler_address``
    if given; ``threads`` then does not matter)."""
    return run_featurize(
        shard_file,
        manifest,
        rejects,
        config["cache_dir"],
        feature_settings(config),
        workers=threads,
        chunk_size=config["featurize"]["chunk_size"],
        scheduler_address=scheduler_address,
    )
