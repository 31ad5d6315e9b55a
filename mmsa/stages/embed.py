"""Embeddings from a pretrained MMSA model.

The embed stage gives every molecule of a dataset its fused MMSA embedding, which the
hypergraph stage and the models on frozen embeddings read. A molecule's embedding depends on
that molecule alone (no hypergraph or memory update runs here), so embedding a whole dataset
leaks nothing between split parts.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch
from torch_geometric.data import Batch

from mmsa.features.loader import FeatureStore
from mmsa.models.mmsa import MMSAModel
from mmsa.models.property import INFERENCE_BATCH
from mmsa.runtime.io import write_parquet
from mmsa.runtime.progress import Progress
from mmsa.stages.inputs import feature_store

log = logging.getLogger(__name__)


def embed_molecules(
    model: MMSAModel,
    store: FeatureStore,
    keys: list[str],
    batch_size: int = INFERENCE_BATCH,
    device: torch.device | str = "cpu",
) -> np.ndarray:
    """Fused (N, embed_dim) embeddings of ``keys``, in order."""
    fused = []
    progress = Progress("embed", len(keys), log, every=20)
    for start in range(0, len(keys), batch_size):
        chunk = keys[start : start + batch_size]
        batch = Batch.from_data_list(store.get(chunk)).to(device)
        fused.append(model.embed(batch)[0].float().cpu().numpy())
        progress.update(len(chunk))
    return np.concatenate(fused)


def write_embeddings(
    keys: list[str],
    fused: np.ndarray,
    path: str | os.PathLike,
    rows: list[int] | None = None,
) -> None:
    """Embeddings as Parquet: ``key`` and ``fused`` (a fixed-size float32 list), after
    ``row``, each embedding's row in the input file, when ``rows`` is given (``mmsa embed``: with
    the rejects file, every input row is then found in one of the two)."""
    numbers = {} if rows is None else {"row": pa.array(rows, pa.int64())}
    table = pa.table(
        {
            **numbers,
            "key": pa.array(keys, pa.string()),
            "fused": pa.FixedSizeListArray.from_arrays(pa.array(fused.ravel(), pa.float32()), fused.shape[1]),
        }
    )
    write_parquet(table, path)


def read_embeddings(path: str | os.PathLike) -> tuple[list[str], np.ndarray]:
    """Keys and fused embeddings written by :func:`write_embeddings`."""
    table = pq.read_table(path)
    fused = table.column("fused").combine_chunks()
    matrix = fused.flatten().to_numpy().reshape(len(table), fused.type.list_size)
    return table.column("key").to_pylist(), matrix


def embed(
    config: dict[str, Any],
    model_path: str | os.PathLike,
    manifests: Sequence[str | os.PathLike],
    out: str | os.PathLike,
) -> int:
    """Fused embeddings of every featurized molecule of a dataset."""
    from mmsa.models.pretrained_file import load_pretrained
    from mmsa.runtime.device import pick_device

    device = pick_device(config["pretrain"]["settings"]["device"])
    store = feature_store(config, manifests)
    keys = sorted(store.keys)
    fused = embed_molecules(load_pretrained(model_path, device), store, keys, device=device)
    write_embeddings(keys, fused, out)
    return len(keys)
