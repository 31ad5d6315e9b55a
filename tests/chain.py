"""Run the data stages in-process on a local CSV, as the Snakemake rules would."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mmsa.config import validate_config
from mmsa.stages import run_data_stages

SMALL_FEATURES = {"image_size": 32, "conformer": {"timeout_s": 5, "optimize_steps": 100}}  # fast


def toy_config(tmp: Path, names: list[str], tasks: dict[str, str], **data: Any) -> dict[str, Any]:
    """A config whose datasets ``names`` are ``<tmp>/<name>.csv`` files."""
    custom = {
        n: {"source": "local", "smiles_column": "smiles", "task_type": "classification", "tasks": tasks}
        for n in names
    }
    return validate_config(
        {
            "cache_dir": str(tmp / "cache"),
            "data": {"local_dir": str(tmp), "custom": custom, **data},
            "featurize": SMALL_FEATURES,
            "finetune": {"datasets": names},
        }
    )


def run_chain(config: dict[str, Any], name: str, out: Path, threads: int = 1) -> dict[str, Any]:
    """fetch -> standardize -> shard -> featurize -> account into ``out/name``."""
    return run_data_stages(config, name, out / name, threads)
