"""The fetch stage: a dataset (or the pretraining mixture) from its source to raw Parquet."""

from __future__ import annotations

import os
from typing import Any

from mmsa.data.corpus import fetch_corpus
from mmsa.data.raw_table import fetch_dataset
from mmsa.data.registry import MIXTURE
from mmsa.plan.datasets import dataset_spec, row_limit


def fetch(config: dict[str, Any], dataset: str, out: str | os.PathLike) -> int:
    """Fetch ``dataset`` into ``out`` (raw Parquet); return its rows."""
    spec = dataset_spec(config, dataset)
    if spec.source == MIXTURE:
        sources = {name: dataset_spec(config, name) for name in spec.mixture}
        taken = fetch_corpus(
            spec, sources, out, config["cache_dir"], config["data"]["local_dir"], config["seed"]
        )
        return sum(c["taken"] for c in taken.values())
    return fetch_dataset(
        spec, out, config["cache_dir"], config["data"]["local_dir"], row_limit(config, dataset)
    )
