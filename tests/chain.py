"""Run the data stages in-process on a local CSV, as the Snakemake rules would."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mmsa.config import validate_config
from mmsa.data.shard import shard_path
from mmsa.plan import n_shards
from mmsa.stages import account, featurize, fetch, shard, standardize


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
            "featurize": {"image_size": 32, "conformer": {"timeout_s": 5, "optimize_steps": 100}},
            "finetune": {"datasets": names},
        }
    )


def run_chain(config: dict[str, Any], name: str, out: Path, threads: int = 1) -> dict[str, Any]:
    """fetch -> standardize -> shard -> featurize -> account; returns the featurize counts too."""
    d = out / name
    fetch(config, name, d / "raw.parquet")
    standardize(config, name, d / "raw.parquet", d / "std", d / "rej-std.parquet", threads=threads)
    shard(config, name, d / "std", d / "shards", d / "rej-shard.parquet", threads=threads)
    shards = range(n_shards(config, name))
    counts = [
        featurize(
            config,
            shard_path(d / "shards", s),
            d / f"man-{s}.parquet",
            d / f"rej-feat-{s}.parquet",
            threads=threads,
        )
        for s in shards
    ]
    summary = account(
        name,
        d / "raw.parquet",
        [d / "rej-std.parquet", d / "rej-shard.parquet", *[d / f"rej-feat-{s}.parquet" for s in shards]],
        [d / f"man-{s}.parquet" for s in shards],
        d / "accounting.json",
        d / "rejects.csv",
    )
    summary["featurize"] = counts
    return summary
