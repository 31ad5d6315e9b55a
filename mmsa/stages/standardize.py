"""The standardize stage: raw rows to standardized molecules and a rejects table."""

from __future__ import annotations

import os
from typing import Any

from mmsa.data.standardize_parts import run_standardize
from mmsa.plan.datasets import dataset_spec
from mmsa.stages.inputs import standardize_options


def standardize(
    config: dict[str, Any],
    dataset: str,
    raw: str | os.PathLike,
    out_dir: str | os.PathLike,
    rejects: str | os.PathLike,
    threads: int = 1,
    scheduler_address: str | None = None,
) -> dict:
    """Standardize the raw rows of ``dataset`` (on the Dask cluster at ``scheduler_address`` if
    given, see :data:`mmsa.plan.config_slices.PLACEMENT`)."""
    spec = dataset_spec(config, dataset)
    return run_standardize(
        raw,
        out_dir,
        rejects,
        spec,
        standardize_options(config),
        workers=threads,
        scheduler_address=scheduler_address,
    )
