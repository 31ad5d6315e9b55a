"""Structure awareness across molecules: a kNN hypergraph and hypergraph convolutions.

MMSA models higher-order relations between molecules with a hypergraph built in embedding
space. For a batch of embeddings, molecule i's hyperedge e_i contains i and its nearest
neighbours by cosine similarity (``k`` neighbours, so ``k + 1`` nodes with i itself); so every
molecule spans one hyperedge and belongs to the hyperedges of the molecules it is close to.
Optionally the memory anchors (:mod:`mmsa.models.memory`) join as extra nodes: they can be
members of the molecules' hyperedges (a molecule's neighbourhood then includes the "typical"
representations near it) but span no hyperedge of their own.

:class:`HypergraphEncoder` runs PyG ``HypergraphConv`` layers (node -> hyperedge mean -> node
mean, Feng et al. 2019) on this hypergraph; its output is the *structure-aware* embedding.

The hypergraph loss (:func:`hypergraph_loss`) is the symmetric InfoNCE between a molecule's
structure-aware embedding and its fused embedding: the fused embedding must identify the
aggregate of its own neighbourhood among the batch, which distils the neighbourhood (higher
order) information into the representation that downstream tasks use, while the negatives keep
different molecules apart. The hypergraph itself is rebuilt every step from detached
embeddings (top-k selection has no gradient).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch_geometric.nn import HypergraphConv

from mmsa.models.losses import info_nce


def knn_hyperedges(
    x: Tensor, k: int, num_centres: int | None = None, chunk_rows: int | None = None
) -> Tensor:
    """Incidence of the kNN hypergraph as PyG ``hyperedge_index`` (2, num_centres * k').

    Hyperedge e (for e < ``num_centres``, default all rows) holds node e and its ``k`` most
    cosine-similar other rows of ``x`` (``k`` counts neighbours, not the centre, as every
    ``hypergraph_k`` of the config does); ``k' = min(k + 1, len(x))`` members. Row 0 of the result holds node
    ids, row 1 hyperedge ids; the nodes of each hyperedge are listed by decreasing similarity,
    node e first. ``chunk_rows`` bounds memory for large sets (a whole dataset rather than a
    batch): similarities are computed for that many centres at a time.
    """
    if k < 1:
        raise ValueError("k must be at least 1")
    n = x.size(0)
    c = n if num_centres is None else num_centres
    if not 0 <= c <= n:
        raise ValueError(f"num_centres {c} must lie in [0, {n}]")
    if c == 0:
        return torch.zeros(2, 0, dtype=torch.long, device=x.device)
    z = F.normalize(x.detach().float(), dim=-1)
    k_eff = min(k + 1, n)
    step = c if chunk_rows is None else max(1, chunk_rows)
    blocks = []
    for start in range(0, c, step):
        centres = torch.arange(start, min(c, start + step), device=x.device)
        sim = z[centres] @ z.t()  # (block, n)
        sim[torch.arange(len(centres), device=x.device), centres] = float("inf")  # centre first
        blocks.append(sim.topk(k_eff, dim=1).indices)
    nodes = torch.cat(blocks)  # (c, k_eff)
    edges = torch.arange(c, device=x.device).repeat_interleave(k_eff)
    return torch.stack([nodes.reshape(-1), edges], dim=0)


class HypergraphEncoder(nn.Module):
    """kNN hypergraph over the batch (+ optional anchor nodes) and ``HypergraphConv`` layers.

    Args:
        dim: input and output size.
        num_layers: hypergraph convolutions (ReLU and dropout between them).
        k: neighbours per hyperedge, the centre not counted (``k + 1`` members).
        dropout: dropout between layers.

    Inputs are L2-normalized first so that molecule and anchor nodes share one scale.
    """

    def __init__(self, dim: int, num_layers: int, k: int, dropout: float = 0.0) -> None:
        super().__init__()
        if num_layers < 1:
            raise ValueError("HypergraphEncoder needs at least one layer")
        self.k, self.dropout = k, dropout
        self.convs = nn.ModuleList(HypergraphConv(dim, dim) for _ in range(num_layers))
        self.out_dim = dim

    def forward(self, x: Tensor, anchors: Tensor | None = None) -> Tensor:
        """Embeddings (B, dim) [and anchors (M, dim)] -> structure-aware embeddings (B, dim)."""
        b = x.size(0)
        h = F.normalize(x, dim=-1)
        if anchors is not None and anchors.numel():
            h = torch.cat([h, F.normalize(anchors.detach().to(h.dtype), dim=-1)], dim=0)
        hyperedge_index = knn_hyperedges(h, self.k, num_centres=b)
        for i, conv in enumerate(self.convs):
            h = conv(h, hyperedge_index, num_edges=b)
            if i < len(self.convs) - 1:
                h = F.dropout(F.relu(h), self.dropout, training=self.training)
        return h[:b]


def hypergraph_loss(structure: Tensor, fused: Tensor, temperature: float = 0.1) -> Tensor:
    """Symmetric InfoNCE between structure-aware and fused embeddings of the same molecules."""
    return info_nce(structure, fused, temperature)
