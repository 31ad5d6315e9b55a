"""The data stages as plain functions of (validated config, paths), called by both the
Snakemake rules and the ``mmsa`` command line."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from typing import Any

import pandas as pd
import pyarrow.parquet as pq

from mmsa.data.fetch import fetch_dataset
from mmsa.data.prepare import run_standardize
from mmsa.data.shard import run_shard
from mmsa.data.standardize import reject_frame
from mmsa.features.featurize import run_featurize
from mmsa.io import atomic_path, write_text
from mmsa.plan import dataset_spec, feature_settings, n_shards, standardize_options

log = logging.getLogger(__name__)


class AccountingError(RuntimeError):
    """Rows went missing between the input table and the outputs: a bug, never ignored."""


def fetch(config: dict[str, Any], dataset: str, out: str | os.PathLike) -> int:
    """Fetch ``dataset`` into ``out`` (raw Parquet)."""
    return fetch_dataset(
        dataset_spec(config, dataset), out, config["cache_dir"], config["data"]["local_dir"],
        max_rows=config["data"]["max_rows"].get(dataset),
    )


def standardize(config: dict[str, Any], dataset: str, raw: str | os.PathLike,
                out_dir: str | os.PathLike, rejects: str | os.PathLike, threads: int = 1) -> dict:
    """Standardize the raw rows of ``dataset``."""
    spec = dataset_spec(config, dataset)
    return run_standardize(raw, out_dir, rejects, spec.label_transform,
                           standardize_options(config), workers=threads)


def shard(config: dict[str, Any], dataset: str, standardized: str | os.PathLike,
          out_dir: str | os.PathLike, rejects: str | os.PathLike, threads: int = 1) -> dict:
    """Shard the standardized rows of ``dataset``."""
    with atomic_path(out_dir) as tmp:
        return run_shard(standardized, tmp, rejects, n_shards(config, dataset),
                         dedupe=config["data"]["dedupe"], workers=threads)


def featurize(config: dict[str, Any], shard_file: str | os.PathLike, manifest: str | os.PathLike,
              rejects: str | os.PathLike, threads: int = 1) -> dict:
    """Featurize one shard into the shared cache."""
    return run_featurize(shard_file, manifest, rejects, config["cache_dir"], feature_settings(config),
                         workers=threads, chunk_size=config["featurize"]["chunk_size"])


def account(dataset: str, raw: str | os.PathLike, rejects: Sequence[str | os.PathLike],
            manifests: Sequence[str | os.PathLike], summary: str | os.PathLike,
            rejects_csv: str | os.PathLike) -> dict[str, Any]:
    """Check rows in = rows featurized + rows rejected; write the summary and all rejects.

    Every input row number must appear exactly once across the manifests and rejects tables.
    """
    rows_in = pq.read_metadata(raw).num_rows
    tables = [pq.read_table(p).to_pandas() for p in rejects]
    all_rejects = pd.concat([reject_frame([]), *tables], ignore_index=True).sort_values("row")
    featurized = pd.concat([pq.read_table(p, columns=["row", "conf_ok", "image_ok"]).to_pandas()
                            for p in manifests], ignore_index=True)
    seen = pd.concat([featurized["row"], all_rejects["row"]])
    if len(seen) != rows_in or seen.nunique() != rows_in:
        lost = sorted(set(range(rows_in)) - set(seen))[:10]
        raise AccountingError(
            f"{dataset}: {rows_in} rows in, {len(featurized)} featurized + {len(all_rejects)} rejected "
            f"({seen.nunique()} distinct); first missing rows {lost}"
        )
    result = {
        "dataset": dataset, "rows_in": rows_in, "featurized": len(featurized),
        "rejected": len(all_rejects),
        "rejected_by_stage": {k: int(v) for k, v in all_rejects["stage"].value_counts().items()},
        "conformer_missing": int((~featurized["conf_ok"]).sum()),
        "image_missing": int((~featurized["image_ok"]).sum()),
    }
    with atomic_path(rejects_csv) as tmp:
        all_rejects.to_csv(tmp, index=False)
    write_text(json.dumps(result, indent=1) + "\n", summary)
    log.info("%s: %d rows in = %d featurized + %d rejected %s", dataset, rows_in, len(featurized),
             len(all_rejects), result["rejected_by_stage"])
    return result



def pretrain(config: dict[str, Any], manifests: Sequence[str | os.PathLike], out_dir: str | os.PathLike,
             checkpoint: str | os.PathLike) -> dict[str, Any]:
    """Pretrain MMSA on the featurized corpus listed by ``manifests``."""
    import dataclasses

    from mmsa.features.cache import FeatureCache
    from mmsa.train.pretrain import PretrainSettings
    from mmsa.train.pretrain import pretrain as run_pretrain

    settings = PretrainSettings.from_dict(config["pretrain"]["settings"])
    cache = FeatureCache(config["cache_dir"], feature_settings(config))
    result = run_pretrain([str(m) for m in manifests], cache, settings, config["seed"], out_dir, checkpoint)
    return dataclasses.asdict(result)
