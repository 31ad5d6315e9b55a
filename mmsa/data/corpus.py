"""The pretraining corpus as a seeded mixture of datasets (``pretrain.corpus``).

Each source dataset is fetched with the ordinary sampling of :func:`mmsa.data.raw_table.fetch_dataset`
(``counts[name]`` rows drawn by the seed, or every row of a source that has fewer), and the
samples are written one after the other, in sorted source order, as one unlabelled fetched table.
Every source is drawn with the same seed, so a source's rows do not depend on the other sources:
``{zinc: 10000}`` is exactly the rows ``data.sample_rows: {zinc: 10000}`` takes. Each row keeps
its source dataset and its row number there, so any corpus molecule can be traced to its file.
De-duplication and the removal of finetuning molecules happen after standardization, in the
shard stage (:mod:`mmsa.data.key_shards`), where each removed row gets its reason.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from mmsa.data.columns import FETCH_ERROR, ROW, SMILES, SOURCE_DATASET, SOURCE_ROW
from mmsa.data.raw_table import fetch_dataset
from mmsa.data.registry import DatasetSpec
from mmsa.data.row_limit import RowLimit
from mmsa.runtime.io import write_parquet

log = logging.getLogger(__name__)

SCHEMA = pa.schema(
    [
        (ROW, pa.int64()),
        (SOURCE_DATASET, pa.string()),
        (SOURCE_ROW, pa.int64()),
        (SMILES, pa.string()),
        (FETCH_ERROR, pa.string()),
    ]
)
METADATA = "mmsa.corpus"  # the raw table's per-source counts (rows asked for, rows taken)


def fetch_corpus(
    spec: DatasetSpec,
    sources: dict[str, DatasetSpec],
    out_path: str | os.PathLike,
    cache_dir: str | os.PathLike,
    local_dir: str | os.PathLike | None,
    seed: int,
) -> dict[str, dict[str, int]]:
    """Write the mixture ``spec`` (whose source datasets' specs are ``sources``) to ``out_path``.

    Returns, per source, the rows asked for and the rows taken (fewer when the source has
    fewer); the same counts go into the table's metadata under :data:`METADATA`, where the
    accounting reads them.
    """
    missing = sorted(set(spec.mixture) - set(sources))
    if missing:
        raise ValueError(f"{spec.name}: no spec for source datasets {missing}")
    counts: dict[str, dict[str, int]] = {}
    tables = []
    Path(out_path).parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=Path(out_path).parent) as tmp:
        for name, wanted in sorted(spec.mixture.items()):
            part = Path(tmp) / f"{name}.parquet"
            taken = fetch_dataset(sources[name], part, cache_dir, local_dir, RowLimit("sample", wanted, seed))
            counts[name] = {"requested": wanted, "taken": taken}
            if taken < wanted:
                log.warning(
                    "%s: source %s has %d rows, fewer than the %d asked for: all taken",
                    spec.name,
                    name,
                    taken,
                    wanted,
                )
            table = pq.read_table(part, columns=[SOURCE_ROW, SMILES, FETCH_ERROR])
            tables.append(table.add_column(0, SOURCE_DATASET, pa.array([name] * len(table), pa.string())))
    joined = pa.concat_tables(tables)
    joined = joined.add_column(0, ROW, pa.array(range(len(joined)), pa.int64())).select(SCHEMA.names)
    provenance = {
        **spec.to_dict(),
        "seed": seed,
        "sources": {n: s.to_dict() for n, s in sorted(sources.items())},
    }
    schema = SCHEMA.with_metadata({"mmsa.source": json.dumps(provenance), METADATA: json.dumps(counts)})
    write_parquet(joined.cast(schema), out_path)
    log.info("%s: %d rows from %s", spec.name, len(joined), counts)
    return counts


def corpus_counts(raw_path: str | os.PathLike) -> dict[str, dict[str, int]] | None:
    """The per-source counts of a fetched corpus table, or None for any other fetched table."""
    metadata = pq.read_schema(raw_path).metadata or {}
    value = metadata.get(METADATA.encode())
    return json.loads(value) if value is not None else None
