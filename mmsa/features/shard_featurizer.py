"""The featurize stage: one dataset shard -> features in the shared cache + a manifest.

Only molecules the cache lacks are computed. They are split into chunks that Dask spreads
over the job's worker processes; the parent writes finished chunks into one new pack as they
arrive, so memory stays bounded by a few chunks, not by the shard. The manifest (one row per
shard row: key and where its features are) is the stage's Snakemake output.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import dask
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from mmsa.data.stage_tables import KEYED_COLUMNS, SHARD, checked_table
from mmsa.data.standardized_molecules import reject_frame
from mmsa.features.cache import CacheHit, FeatureCache, PackWriter
from mmsa.features.compute import featurize_chunk
from mmsa.features.settings import FeatureSettings
from mmsa.runtime.hashing import settings_digest
from mmsa.runtime.io import atomic_path, write_parquet
from mmsa.runtime.parallel import dask_workers, prefetched
from mmsa.runtime.progress import Progress

log = logging.getLogger(__name__)

MANIFEST_SCHEMA = pa.schema(
    [
        ("row", pa.int64()),
        ("key", pa.string()),
        ("pack", pa.string()),
        ("pack_row", pa.int64()),
        ("conf_ok", pa.bool_()),
        ("image_ok", pa.bool_()),
    ]
)


def compute_pack(
    cache: FeatureCache, keys: list[str], workers: int, chunk_size: int, scheduler_address: str | None = None
) -> tuple[str | None, list[dict[str, Any]]]:
    """Featurize ``keys`` into one new pack (on the cluster at ``scheduler_address`` if given);
    return its name and the molecules that failed."""
    if not keys:
        return None, []
    name = settings_digest(sorted(keys))
    while cache.pack_path(name).exists():  # a damaged pack holds the name (an intact one, the keys)
        name = settings_digest([name])
    settings = cache.settings.to_dict()
    chunks = [keys[i : i + chunk_size] for i in range(0, len(keys), chunk_size)]
    failed: list[dict[str, Any]] = []
    progress = Progress("featurize", len(keys), log)
    with (
        atomic_path(cache.pack_path(name), overwrite=False) as tmp,
        dask_workers(workers, scheduler_address) as slots,
    ):
        window = slots * 32  # chunks per Dask round: few idle tails, bounded memory
        rounds = (
            dask.compute(*[dask.delayed(featurize_chunk)(c, settings) for c in chunks[i : i + window]])
            for i in range(0, len(chunks), window)
        )
        writer = PackWriter(tmp, cache.settings.image_size)
        # the next round computes while this one is written, so workers never wait on the writer
        for results in prefetched(rounds, depth=1):
            for result in results:
                writer.add([m for m in result if "error" not in m])
                failed += [m for m in result if "error" in m]
                progress.update(len(result))
        writer.close()
    return name, failed


def _manifest_and_rejects(
    shard: pd.DataFrame, hits: dict[str, CacheHit], reasons: dict[str, str]
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Each featurized row's place in the cache, and each failed row with the featurizer's reason."""
    bad = shard["key"].isin(reasons)
    rejects = reject_frame(
        [
            {"row": r, "input": i, "stage": "featurize", "reason": reasons[k]}
            for r, i, k in zip(shard["row"][bad], shard["input"][bad], shard["key"][bad], strict=True)
        ]
    )
    kept = shard[~bad]
    located = [hits[k] for k in kept["key"]]
    manifest = pd.DataFrame(
        {
            "row": kept["row"].to_numpy(),
            "key": kept["key"].to_numpy(),
            "pack": [h.pack for h in located],
            "pack_row": [h.pack_row for h in located],
            "conf_ok": [h.conf_ok for h in located],
            "image_ok": [h.image_ok for h in located],
        }
    )
    return manifest, rejects


def run_featurize(
    shard_path: str | os.PathLike,
    manifest_path: str | os.PathLike,
    rejects_path: str | os.PathLike,
    cache_dir: str | os.PathLike,
    settings: FeatureSettings,
    chunk_size: int,
    workers: int = 1,
    scheduler_address: str | None = None,
) -> dict[str, int]:
    """Featurize one shard in Dask tasks of ``chunk_size`` molecules (``featurize.chunk_size``);
    write its manifest and rejects; return counts. With
    ``scheduler_address`` the molecules are computed on that Dask cluster, not ``workers``
    local processes (the bytes written are the same)."""
    shard = pq.read_table(checked_table(shard_path, KEYED_COLUMNS, SHARD), columns=list(KEYED_COLUMNS))
    shard = shard.to_pandas()
    cache = FeatureCache(cache_dir, settings)
    cache.remove_stale_temporaries()
    unique = list(dict.fromkeys(shard["key"]))
    hits = cache.lookup(set(unique))
    missing = [k for k in unique if k not in hits]
    log.info(
        "%s: %d molecules, %d reused from the feature cache, %d to compute",
        Path(shard_path).name,
        len(unique),
        len(hits),
        len(missing),
    )
    pack, failed = compute_pack(cache, missing, workers, chunk_size, scheduler_address)
    if pack is not None:
        hits.update(cache.lookup(set(missing) - {m["key"] for m in failed}))
    manifest, rejects = _manifest_and_rejects(shard, hits, {m["key"]: m["error"] for m in failed})
    write_parquet(pa.Table.from_pandas(manifest, schema=MANIFEST_SCHEMA, preserve_index=False), manifest_path)
    write_parquet(pa.Table.from_pandas(rejects, preserve_index=False), rejects_path)
    counts = {
        "rows": len(shard),
        "featurized": len(manifest),
        "rejected": len(rejects),
        "reused": len(unique) - len(missing),
        "computed": len(missing) - len(failed),
        "conformer_failures": int((~manifest["conf_ok"]).sum()),
        "image_failures": int((~manifest["image_ok"]).sum()),
    }
    log.info("%s: %s", Path(shard_path).name, counts)
    return counts
