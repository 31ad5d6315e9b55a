"""Embeddings from a pretrained MMSA model, and the kNN hypergraph over a dataset's molecules.

The embed stage gives every molecule of a dataset its fused MMSA embedding and its GIN graph
embedding. The hypergraph stage connects each molecule to its k nearest neighbours in the
fused space (no labels are involved, so nothing leaks from the test split), which is the
structure the ``mmsa`` finetuning head propagates over.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch
import torch.nn.functional as F
from torch_geometric.data import Batch

from mmsa.features.loader import FeatureStore
from mmsa.io import write_parquet, write_text
from mmsa.models.hypergraph import knn_hyperedges
from mmsa.models.mmsa import MMSAConfig, MMSAModel
from mmsa.progress import Progress

log = logging.getLogger(__name__)


def load_pretrained(path: str | os.PathLike, device: torch.device | str = "cpu") -> MMSAModel:
    """The pretrained model saved by the pretrain stage, in evaluation mode."""
    weights = torch.load(path, weights_only=True, map_location=device)
    model = MMSAModel(MMSAConfig.from_dict(weights["model_config"]))
    model.load_state_dict(weights["state_dict"])
    return model.to(device).eval()


def embed_molecules(
    model: MMSAModel,
    store: FeatureStore,
    keys: list[str],
    batch_size: int = 256,
    device: torch.device | str = "cpu",
) -> tuple[np.ndarray, np.ndarray]:
    """Fused (N, embed_dim) and graph (N, gnn_dim) embeddings of ``keys``, in order."""
    fused, graph = [], []
    progress = Progress("embed", len(keys), log, every=20)
    for start in range(0, len(keys), batch_size):
        chunk = keys[start : start + batch_size]
        batch = Batch.from_data_list(store.get(chunk)).to(device)
        f, g = model.embed(batch)
        fused.append(f.float().cpu().numpy())
        graph.append(g.float().cpu().numpy() if g is not None else np.zeros((len(chunk), 0), np.float32))
        progress.update(len(chunk))
    return np.concatenate(fused), np.concatenate(graph)


def write_embeddings(keys: list[str], fused: np.ndarray, graph: np.ndarray, path: str | os.PathLike) -> None:
    """Embeddings as Parquet: ``key``, ``fused`` and ``graph`` (fixed-size float32 lists)."""
    table = pa.table(
        {
            "key": pa.array(keys, pa.string()),
            "fused": pa.FixedSizeListArray.from_arrays(pa.array(fused.ravel(), pa.float32()), fused.shape[1]),
            "graph": pa.FixedSizeListArray.from_arrays(pa.array(graph.ravel(), pa.float32()), graph.shape[1]),
        }
    )
    write_parquet(table, path)


def read_embeddings(path: str | os.PathLike) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Keys, fused and graph embeddings written by :func:`write_embeddings`."""
    table = pq.read_table(path)

    def matrix(name: str) -> np.ndarray:
        column = table.column(name).combine_chunks()
        return column.flatten().to_numpy().reshape(len(table), column.type.list_size)

    return table.column("key").to_pylist(), matrix("fused"), matrix("graph")


def build_hypergraph(embeddings: np.ndarray, k: int) -> tuple[np.ndarray, dict[str, Any]]:
    """kNN hypergraph incidence (2, nnz) [node ids; hyperedge ids] and summary statistics.

    Hyperedge i holds molecule i and its ``k`` most cosine-similar other molecules.
    """
    x = torch.as_tensor(embeddings, dtype=torch.float32)
    incidence = knn_hyperedges(x, k + 1, chunk_rows=2048)
    nodes, edges = incidence
    z = F.normalize(x, dim=-1)
    similarity = (z[nodes] * z[edges]).sum(-1)[nodes != edges]
    degree = torch.bincount(nodes, minlength=len(x)).float()
    stats = {
        "molecules": len(x),
        "hyperedges": int(edges.max()) + 1 if len(x) else 0,
        "k": k,
        "incidences": int(incidence.shape[1]),
        "node_degree_mean": round(float(degree.mean()), 3),
        "node_degree_max": int(degree.max()),
        "isolated_fraction": round(float((degree <= 1).float().mean()), 4),
        "neighbour_cosine_mean": round(float(similarity.mean()), 4) if len(similarity) else None,
    }
    return incidence.numpy(), stats


def write_hypergraph(
    keys: list[str],
    incidence: np.ndarray,
    stats: dict[str, Any],
    path: str | os.PathLike,
    stats_path: str | os.PathLike,
) -> None:
    """Incidence list as Parquet (``node``, ``hyperedge``, ``key`` of the node) + JSON stats."""
    table = pa.table(
        {
            "node": pa.array(incidence[0], pa.int64()),
            "hyperedge": pa.array(incidence[1], pa.int64()),
            "key": pa.array([keys[i] for i in incidence[0]], pa.string()),
        }
    )
    write_parquet(table, path)
    write_text(json.dumps(stats, indent=1) + "\n", stats_path)
    log.info("hypergraph %s: %s", Path(path).stem, stats)
