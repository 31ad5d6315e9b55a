"""``hypergraph_k`` means one thing in both places it is set: the neighbours of a hyperedge's
centre, the centre not counted, so a hyperedge has k + 1 members.

Both uses are checked on hand-built embeddings whose nearest neighbours are known: unit vectors
in the plane at the angles below, so cosine similarity orders neighbours by angular distance.
"""

import numpy as np
import pandas as pd
import torch

from mmsa.models.mmsa import MMSAModel
from mmsa.models.mmsa_config import MMSAConfig
from mmsa.stages.hypergraph import split_hypergraphs

ANGLES = [0, 10, 25, 90, 100, 180]  # degrees
# each molecule's two nearest others (k = 2), by angular distance
NEAREST_TWO = {0: {1, 2}, 1: {0, 2}, 2: {1, 0}, 3: {4, 2}, 4: {3, 2}, 5: {4, 3}}


def points(angles) -> np.ndarray:
    radians = np.deg2rad(np.asarray(angles, dtype=float))
    return np.stack([np.cos(radians), np.sin(radians)], axis=1)


def members(nodes, edges) -> dict[int, set[int]]:
    out: dict[int, set[int]] = {}
    for node, edge in zip(nodes, edges, strict=True):
        out.setdefault(int(edge), set()).add(int(node))
    return out


def test_the_dataset_hypergraph_has_the_centre_and_k_neighbours():
    """finetune.neighbours: the hypergraph stage's training hypergraph."""
    keys = [f"m{i}" for i in range(len(ANGLES))] + ["v", "t"]
    fused = np.vstack([points(ANGLES), points([5, 95])])
    splits = pd.DataFrame({"seed": 0, "key": keys, "part": ["train"] * len(ANGLES) + ["valid", "test"]})
    table, stats = split_hypergraphs(keys, fused, splits, k=2)
    position = {key: i for i, key in enumerate(keys)}
    got = members(table["member"].map(position), table["hyperedge"].map(position))
    assert got == {i: {i} | near for i, near in NEAREST_TWO.items()}
    assert stats["0"]["k"] == 2 and stats["0"]["incidences"] == len(ANGLES) * 3


def test_the_pretraining_hypergraph_has_the_centre_and_k_neighbours(monkeypatch):
    """pretrain.settings.model.hypergraph_k: the batch hypergraph of the MMSA model."""
    import mmsa.models.knn_hypergraph as hypergraph

    model = MMSAModel(
        MMSAConfig(
            use_image=False,
            use_geometry=False,
            embed_dim=4,
            fusion_heads=1,
            memory=False,
            hypergraph_k=2,
            gnn_layers=1,
            gnn_dim=4,
        )
    )
    seen = []
    original = hypergraph.knn_hyperedges
    monkeypatch.setattr(
        hypergraph, "knn_hyperedges", lambda *a, **kw: seen.append(original(*a, **kw)) or seen[-1]
    )
    model.hypergraph(torch.as_tensor(points(ANGLES), dtype=torch.float32).repeat(1, 2))
    nodes, edges = seen[0].tolist()
    assert members(nodes, edges) == {i: {i} | near for i, near in NEAREST_TWO.items()}
