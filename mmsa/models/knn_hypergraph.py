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

FAISS_MIN_PAIRS = 1 << 24
"""Similarities (centres x rows) from which ``backend="auto"`` uses faiss when it is installed.

Below it (every training batch: a few hundred rows) torch's one matrix product is as fast and
keeps training free of an optional dependency; above it (a dataset's hypergraph) faiss's exact
flat index is faster and its memory is bounded by its own small blocks, where torch holds a
block of ``chunk_rows x len(x)`` similarities (8 GiB for 2,048 centres over a million rows, and
top-k over it as much again). ``benchmarks/knn_hypergraph.py`` measured 1M x 256 on 2 cores:
torch 3.6x faiss's time and 16 GiB, the faiss backend 0.94x and 2 GiB.
"""


def faiss_available() -> bool:
    """Whether the optional faiss package (``pip install 'mmsa[faiss]'``) can be imported."""
    try:
        import faiss  # noqa: F401
    except ImportError:
        return False
    return True


def knn_hyperedges(
    x: Tensor,
    k: int,
    num_centres: int | None = None,
    chunk_rows: int | None = None,
    backend: str = "auto",
    with_similarity: bool = False,
) -> Tensor | tuple[Tensor, Tensor]:
    """Incidence of the kNN hypergraph as PyG ``hyperedge_index`` (2, num_centres * k').

    Hyperedge e (for e < ``num_centres``, default all rows) holds node e and its ``k`` most
    cosine-similar other rows of ``x`` (``k`` counts neighbours, not the centre, as every
    ``hypergraph_k`` of the config does); ``k' = min(k + 1, len(x))`` members. Row 0 of the result holds node
    ids, row 1 hyperedge ids; the nodes of each hyperedge are listed by decreasing similarity,
    node e first. ``chunk_rows`` bounds memory for large sets (a whole dataset rather than a
    batch): similarities are computed for that many centres at a time.

    ``backend``: ``"torch"`` (a matrix product and top-k), ``"faiss"`` (an exact
    ``IndexFlatIP`` over the normalized rows, the same neighbours; needs faiss and a CPU
    tensor), or ``"auto"``: faiss for CPU tensors with at least :data:`FAISS_MIN_PAIRS`
    similarities when faiss is installed, torch otherwise. Both are exact; they can order
    rows whose similarities tie (to float rounding) differently.

    ``with_similarity`` also returns the (num_centres, k') cosine similarities of each
    hyperedge's members in the same order, from the same search (the centre's own entry is 1):
    what the hypergraph stage reports as the training molecules' neighbour similarity.
    """
    if k < 1:
        raise ValueError("k must be at least 1")
    if backend not in ("auto", "torch", "faiss"):
        raise ValueError(f"backend must be auto, torch or faiss, not {backend!r}")
    n = x.size(0)
    c = n if num_centres is None else num_centres
    if not 0 <= c <= n:
        raise ValueError(f"num_centres {c} must lie in [0, {n}]")
    if c == 0:
        empty = torch.zeros(2, 0, dtype=torch.long, device=x.device)
        return (empty, torch.zeros(0, min(k + 1, n), device=x.device)) if with_similarity else empty
    z = F.normalize(x.detach().float(), dim=-1)
    k_eff = min(k + 1, n)
    if backend == "auto":
        large = c * n >= FAISS_MIN_PAIRS and x.device.type == "cpu"
        backend = "faiss" if large and faiss_available() else "torch"
    if backend == "faiss":
        nodes, similarity = _faiss_neighbours(z, k_eff, c)
    else:
        step = c if chunk_rows is None else max(1, chunk_rows)
        blocks, values = [], []
        for start in range(0, c, step):
            centres = torch.arange(start, min(c, start + step), device=x.device)
            sim = z[centres] @ z.t()  # (block, n)
            sim[torch.arange(len(centres), device=x.device), centres] = float("inf")  # centre first
            top = sim.topk(k_eff, dim=1)
            blocks.append(top.indices)
            if with_similarity:  # not on the training path, which rebuilds a hypergraph every step
                values.append(top.values)
        nodes = torch.cat(blocks)  # (c, k_eff)
        similarity = torch.cat(values) if with_similarity else None
        if similarity is not None:
            similarity[:, 0] = 1.0  # the centre, whose entry was set to infinity to put it first
    edges = torch.arange(c, device=x.device).repeat_interleave(k_eff)
    index = torch.stack([nodes.reshape(-1), edges], dim=0)
    return (index, similarity) if with_similarity else index


def knn_similarity(
    query: Tensor, base: Tensor, k: int, chunk_rows: int = 2048, backend: str = "auto"
) -> Tensor:
    """(len(query), k') cosine similarities of each query row to its ``k`` nearest rows of
    ``base`` (``k' = min(k, len(base))``), largest first: how close held-out molecules lie to the
    training molecules. ``backend`` as in :func:`knn_hyperedges` (faiss for large CPU sets)."""
    q, b = F.normalize(query.detach().float(), dim=-1), F.normalize(base.detach().float(), dim=-1)
    k_eff = min(k, len(b))
    if len(q) == 0 or k_eff == 0:
        return torch.zeros(len(q), k_eff)
    if backend == "auto":
        large = len(q) * len(b) >= FAISS_MIN_PAIRS and q.device.type == "cpu"
        backend = "faiss" if large and faiss_available() else "torch"
    if backend == "faiss":
        import faiss

        index = faiss.IndexFlatIP(b.shape[1])
        index.add(b.contiguous().numpy())
        return torch.from_numpy(index.search(q.contiguous().numpy(), k_eff)[0])
    return torch.cat(
        [(q[s : s + chunk_rows] @ b.t()).topk(k_eff, dim=1).values for s in range(0, len(q), chunk_rows)]
    )


def _faiss_neighbours(z: Tensor, k: int, c: int) -> tuple[Tensor, Tensor]:
    """(c, k) node ids: row e is e, then its k - 1 nearest other rows of unit-norm ``z``; and
    their similarities (the centre's entry 1).

    Inner product on unit vectors is cosine similarity. A centre is its own nearest row except
    when another row ties with it (a duplicate embedding): then it is moved to the front, and
    the next other row fills its place, as the torch path's infinite self-similarity does.
    """
    import faiss

    if z.device.type != "cpu":
        raise ValueError("the faiss backend needs a CPU tensor")
    data = z.contiguous().numpy()
    index = faiss.IndexFlatIP(data.shape[1])
    index.add(data)
    similarity, found = index.search(data[:c], min(k + 1, len(data)))  # one spare for a displaced centre
    found, similarity = torch.from_numpy(found), torch.from_numpy(similarity)
    centre = torch.arange(c).unsqueeze(1)
    position = torch.arange(found.size(1)).expand_as(found)
    others = torch.where(found == centre, found.size(1), position).argsort(dim=1, stable=True)
    rest = found.gather(1, others[:, : k - 1])
    rest_similarity = similarity.gather(1, others[:, : k - 1])
    return torch.cat([centre, rest], dim=1), torch.cat([torch.ones(c, 1), rest_similarity], dim=1)


class HypergraphEncoder(nn.Module):
    r"""Structure-aware embeddings: a kNN hypergraph over the batch's molecules (and, optionally,
    the memory anchors as extra nodes), convolved by PyG's ``HypergraphConv`` (Bai et al. 2021).

    Every molecule :math:`i` of the batch centres one hyperedge :math:`e_i`, itself and its
    :math:`k` nearest nodes by cosine similarity (:func:`knn_hyperedges`). Each layer computes

    .. math::
        \mathbf{X}^{\prime} = \mathbf{D}^{-1} \mathbf{H} \mathbf{B}^{-1} \mathbf{H}^{\top}
        \mathbf{X} \mathbf{\Theta}

    with incidence :math:`\mathbf{H}`, node degrees :math:`\mathbf{D}` and hyperedge degrees
    :math:`\mathbf{B} = (k + 1)\mathbf{I}`; ReLU and dropout sit between layers. Inputs are
    L2-normalized first so that molecule and anchor nodes share one scale; anchors enter
    detached, so the hypergraph term never moves the memory bank.

    Args:
        dim: input and output size.
        num_layers: hypergraph convolutions (at least 1).
        k: neighbours per hyperedge, the centre not counted (``k + 1`` members).
        dropout: dropout between layers (default ``0.0``).

    Shapes:
        - **input:** molecule embeddings :math:`(B, \text{dim})`, anchors :math:`(M, \text{dim})`
          or ``None``
        - **output:** structure-aware embeddings :math:`(B, \text{dim})` (the anchor nodes'
          outputs are dropped)
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
