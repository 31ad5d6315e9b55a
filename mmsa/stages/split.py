"""The split stage: every seed split of a dataset, read by every model."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from typing import Any

import pyarrow as pa

from mmsa.plan.datasets import dataset_spec
from mmsa.runtime.io import write_parquet, write_text
from mmsa.stages.inputs import shard_files

log = logging.getLogger(__name__)


def split(
    config: dict[str, Any],
    dataset: str,
    shards_dir: str | os.PathLike,
    manifests: Sequence[str | os.PathLike],
    out: str | os.PathLike,
    stats_out: str | os.PathLike,
) -> dict[str, Any]:
    """Every seed's train/valid/test split of a dataset's featurized molecules, read by every
    model; the statistics count molecules and labels per part."""
    from mmsa.data.labelled_molecules import load_labelled
    from mmsa.eval.splitters import split_summary, split_table

    frame = load_labelled(shard_files(shards_dir), manifests)
    settings = config["finetune"]["settings"]
    table = split_table(
        frame["row"].tolist(),
        frame["key"].tolist(),
        settings["split"],
        settings["split_fractions"],
        config["finetune"]["seeds"],
    )
    stats = split_summary(table, frame, dataset_spec(config, dataset).task_type)
    write_parquet(pa.Table.from_pandas(table, preserve_index=False), out)
    write_text(json.dumps(stats, indent=1) + "\n", stats_out)
    log.info("%s split: %s", dataset, json.dumps(stats))
    return stats
