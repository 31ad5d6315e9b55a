"""The hypergraph stage: each split's kNN hypergraph over the training molecules.

The ``mmsa`` finetuning head propagates over molecules that are close in the pretrained fused
space. Only training molecules form it: hyperedge e holds training molecule e and its ``k``
most cosine-similar other training molecules (no labels are read). Validation and test
molecules are not part of it; finetuning and ``mmsa predict`` attach each of them with one
hyperedge of its own (:meth:`mmsa.models.structure_context.StructureContext.for_new`), so no held-out
molecule passes messages during training.

The statistics say how well held-out molecules are covered: the mean cosine similarity of each
part's molecules to their ``k`` nearest training molecules shows how far a scaffold split's
test molecules lie from anything seen in training.
"""

from __future__ import annotations

import json
import logging
import os
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import torch

from mmsa.eval.splitters import PARTS
from mmsa.models.knn_hypergraph import knn_hyperedges, knn_similarity
from mmsa.runtime.io import write_parquet, write_text

log = logging.getLogger(__name__)

# Centres whose similarities to every training molecule are computed at once, as one
# CENTRE_BLOCK x n_train float32 matrix: about 0.6 GB for MUV's ~74,000 training molecules (93,087
# molecules, 80 % training), the largest set of config/paper.yaml, so even that fits a small
# machine's memory; the whole 74,000 x 74,000 matrix (22 GB) would not.
CENTRE_BLOCK = 2048


def neighbour_cosine(query: torch.Tensor, base: torch.Tensor, k: int) -> np.ndarray:
    """Mean cosine similarity of each held-out row to its ``k`` nearest training rows."""
    return knn_similarity(query, base, k, chunk_rows=CENTRE_BLOCK).mean(1).numpy()


def split_hypergraphs(
    keys: list[str], fused: np.ndarray, splits: pd.DataFrame, k: int
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Every seed's training hypergraph (``seed``, ``hyperedge``, ``member`` as molecule keys) and
    statistics per seed."""
    if k < 1:
        raise ValueError("the hypergraph needs k >= 1 neighbours")
    position = {key: i for i, key in enumerate(keys)}
    x = torch.tensor(np.asarray(fused), dtype=torch.float32)
    frames, stats = [], {}
    for seed, table in splits.groupby("seed", sort=True):
        index = {p: np.array([position[key] for key in table.loc[table["part"] == p, "key"]]) for p in PARTS}
        train = x[index["train"]]
        incidence, similarity = knn_hyperedges(train, k, chunk_rows=CENTRE_BLOCK, with_similarity=True)
        nodes, edges = incidence.numpy()
        train_keys = np.array(keys, dtype=object)[index["train"]]
        frames.append(
            pd.DataFrame({"seed": seed, "hyperedge": train_keys[edges], "member": train_keys[nodes]})
        )
        # the training molecules' neighbours come from the hypergraph's own search (the centre,
        # column 0, left out); held-out molecules are searched against the training molecules
        own = similarity[:, 1:].mean(1).numpy()
        coverage = {
            p: round(float((own if p == "train" else neighbour_cosine(x[index[p]], train, k)).mean()), 4)
            for p in PARTS
            if len(index[p])
        }
        stats[str(seed)] = {
            "training_molecules": len(train_keys),
            "hyperedges": len(train_keys),
            "k": k,
            "incidences": int(len(nodes)),
            "member_degree_max": int(np.bincount(nodes).max()) if len(nodes) else 0,
            "neighbour_cosine_by_part": coverage,
        }
    table = (
        pd.concat(frames, ignore_index=True)
        if frames
        else pd.DataFrame(columns=["seed", "hyperedge", "member"])
    )
    return table, stats


def write_hypergraphs(
    table: pd.DataFrame, stats: dict[str, Any], path: str | os.PathLike, stats_path: str | os.PathLike
) -> None:
    """The incidence table as Parquet and the statistics as JSON."""
    write_parquet(pa.Table.from_pandas(table.astype({"seed": "int64"}), preserve_index=False), path)
    write_text(json.dumps(stats, indent=1) + "\n", stats_path)
    log.info("hypergraphs: %s", stats)


def hypergraph(
    config: dict[str, Any],
    embeddings: str | os.PathLike,
    splits: str | os.PathLike,
    out: str | os.PathLike,
    stats_out: str | os.PathLike,
) -> dict[str, Any]:
    """Each split's kNN hypergraph over the training molecules' fused embeddings."""
    from mmsa.stages.embed import read_embeddings

    keys, fused = read_embeddings(embeddings)
    table, stats = split_hypergraphs(keys, fused, pd.read_parquet(splits), config["finetune"]["neighbours"])
    write_hypergraphs(table, stats, out, stats_out)
    return stats
