"""3D encoder: SchNet (Schütt et al. 2017) producing one embedding per molecule.

PyG's :class:`~torch_geometric.nn.models.SchNet` predicts a scalar and builds its neighbour
graph with ``radius_graph``, which needs pyg-lib / torch-cluster (not installed here). This module
reuses SchNet's building blocks (Gaussian distance expansion, interaction blocks with
continuous-filter convolutions, shifted softplus) but

* builds the interaction graph in plain torch (:func:`radius_interaction_graph`): all pairs of
  distinct atoms of the same molecule closer than ``cutoff``, optionally keeping only the
  ``max_num_neighbors`` nearest neighbours of each atom;
* embeds atomic numbers 0..119 (0 = unknown) instead of SchNet's 100 elements;
* stops before SchNet's final scalar projection and pools the atom states into a
  ``hidden_channels``-dimensional molecule embedding.

Molecules whose conformer failed (``conf_mask`` False) are dropped before the network runs and
get an all-zero embedding, so their (meaningless) coordinates cannot influence any output,
statistic or gradient. That contract, the interaction graph and the readout live in
:class:`ConformerEncoder`, the base of every 3D encoder (SchNet here, ComENet in :mod:`.comenet`),
so that the architectures differ only in how they embed valid conformers.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import torch
from torch import Tensor, nn
from torch_geometric.nn import global_add_pool, global_max_pool, global_mean_pool
from torch_geometric.nn.models.schnet import GaussianSmearing, InteractionBlock, ShiftedSoftplus
from torch_geometric.utils import to_dense_batch

from mmsa.features.graph import ATOM_TYPE_UNKNOWN, ELEMENTS

NUM_ELEMENTS = ELEMENTS + 2  # atomic numbers 1..ELEMENTS plus 0 (unknown) and one spare
READOUTS = {"mean": global_mean_pool, "sum": global_add_pool, "max": global_max_pool}


def atomic_numbers(x: Tensor) -> Tensor:
    """Atomic numbers from the graph features' first column (unknown / mask tokens -> 0)."""
    z = x[:, 0].long() + 1
    return torch.where(x[:, 0].long() >= ATOM_TYPE_UNKNOWN, torch.zeros_like(z), z)


def radius_interaction_graph(
    pos: Tensor, batch: Tensor, cutoff: float, max_num_neighbors: int | None = None
) -> tuple[Tensor, Tensor]:
    """Edges between distinct atoms of the same molecule closer than ``cutoff``.

    Returns ``(edge_index, edge_weight)`` in PyG's source-to-target convention: row 0 holds the
    neighbour j, row 1 the centre i, and ``edge_weight`` the distance |pos_j - pos_i|. When
    ``max_num_neighbors`` is given, each centre keeps only that many nearest neighbours.
    ``batch`` must be sorted (as in any PyG ``Batch``). Memory is O(G * n_max^2).
    """
    if pos.size(0) == 0:
        return torch.zeros(2, 0, dtype=torch.long, device=pos.device), pos.new_zeros(0)
    dense, valid = to_dense_batch(pos.detach(), batch)  # (G, n_max, 3), (G, n_max)
    counts = valid.sum(dim=1)
    start = torch.cumsum(counts, 0) - counts  # first atom index of each molecule
    dist = torch.cdist(dense, dense)  # (G, i, j)
    n_max = dense.size(1)
    eye = torch.eye(n_max, dtype=torch.bool, device=pos.device)
    keep = valid[:, :, None] & valid[:, None, :] & ~eye & (dist < cutoff)
    if max_num_neighbors is not None and max_num_neighbors < n_max - 1:
        masked = dist.masked_fill(~keep, float("inf"))
        nearest = masked.topk(max_num_neighbors, dim=2, largest=False).indices
        capped = torch.zeros_like(keep)
        capped.scatter_(2, nearest, True)
        keep &= capped
    g, i, j = keep.nonzero(as_tuple=True)
    centre, neighbour = start[g] + i, start[g] + j
    edge_index = torch.stack([neighbour, centre], dim=0)
    edge_weight = (pos[neighbour] - pos[centre]).norm(dim=-1)
    return edge_index, edge_weight


class ConformerEncoder(nn.Module, ABC):
    """Base of the 3D encoders: (atomic numbers, positions, molecule ids, conformer mask) -> (G, out_dim).

    Holds what every architecture shares, so it is stated once: the masking contract of
    :meth:`forward`, the interaction graph (:meth:`interaction_graph`) and the readout
    (:meth:`pool`). Subclasses implement :meth:`embed_conformers` and set ``out_dim``.

    Args:
        out_dim: size of the molecule embedding.
        cutoff: interaction radius in Angstrom.
        max_num_neighbors: nearest neighbours kept per atom within ``cutoff`` (None = all).
        readout: "mean", "sum" or "max" pooling of the atom states.
    """

    def __init__(self, out_dim: int, cutoff: float, max_num_neighbors: int | None, readout: str) -> None:
        super().__init__()
        if readout not in READOUTS:
            raise ValueError(f"unknown readout {readout!r}; use one of {tuple(READOUTS)}")
        self.out_dim, self.cutoff = out_dim, cutoff
        self.max_num_neighbors, self.readout = max_num_neighbors, readout

    def interaction_graph(self, pos: Tensor, batch: Tensor) -> tuple[Tensor, Tensor]:
        """``(edge_index, edge_weight)`` of :func:`radius_interaction_graph` with this encoder's radius."""
        return radius_interaction_graph(pos, batch, self.cutoff, self.max_num_neighbors)

    def pool(self, h: Tensor, batch: Tensor, num_graphs: int) -> Tensor:
        """Atom states (N, out_dim) -> molecule embeddings (num_graphs, out_dim)."""
        return READOUTS[self.readout](h, batch, size=num_graphs)

    @abstractmethod
    def embed_conformers(self, z: Tensor, pos: Tensor, batch: Tensor, num_graphs: int) -> Tensor:
        """(num_graphs, out_dim) embeddings of molecules that all have a valid conformer."""

    def forward(
        self,
        z: Tensor,
        pos: Tensor,
        batch: Tensor,
        conf_mask: Tensor | None = None,
        num_graphs: int | None = None,
    ) -> Tensor:
        """Per-molecule embeddings (G, out_dim); rows with ``conf_mask`` False are zeros."""
        if num_graphs is None:
            num_graphs = int(batch.max()) + 1 if batch.numel() else 0
        if conf_mask is None:
            conf_mask = torch.ones(num_graphs, dtype=torch.bool, device=pos.device)
        conf_mask = conf_mask.bool().view(-1)
        out = pos.new_zeros(num_graphs, self.out_dim)
        atom_keep = conf_mask[batch]
        if not bool(atom_keep.any()):
            return out
        # Renumber the kept molecules 0..K-1 so the network only sees valid conformers.
        new_id = torch.cumsum(conf_mask.long(), 0) - 1
        pooled = self.embed_conformers(
            z[atom_keep].long(), pos[atom_keep].float(), new_id[batch[atom_keep]], int(conf_mask.sum())
        )
        return out.index_put((conf_mask.nonzero(as_tuple=True)[0],), pooled.to(out.dtype))


class SchNetEncoder(ConformerEncoder):
    """SchNet trunk: (atomic numbers, positions, molecule ids, conformer mask) -> (G, hidden).

    Args:
        hidden_channels, num_filters, num_interactions, num_gaussians, cutoff: as in SchNet.
        max_num_neighbors, readout: as in :class:`ConformerEncoder`.
    """

    def __init__(
        self,
        hidden_channels: int = 128,
        num_filters: int = 128,
        num_interactions: int = 4,
        num_gaussians: int = 50,
        cutoff: float = 10.0,
        max_num_neighbors: int | None = 32,
        readout: str = "mean",
    ) -> None:
        super().__init__(hidden_channels, cutoff, max_num_neighbors, readout)
        self.embedding = nn.Embedding(NUM_ELEMENTS, hidden_channels, padding_idx=0)
        self.distance_expansion = GaussianSmearing(0.0, cutoff, num_gaussians)
        self.interactions = nn.ModuleList(
            InteractionBlock(hidden_channels, num_gaussians, num_filters, cutoff)
            for _ in range(num_interactions)
        )
        self.lin1 = nn.Linear(hidden_channels, hidden_channels)
        self.act = ShiftedSoftplus()
        self.reset_parameters()

    def reset_parameters(self) -> None:
        self.embedding.reset_parameters()
        for interaction in self.interactions:
            interaction.reset_parameters()
        nn.init.xavier_uniform_(self.lin1.weight)
        nn.init.zeros_(self.lin1.bias)

    def embed_conformers(self, z: Tensor, pos: Tensor, batch: Tensor, num_graphs: int) -> Tensor:
        h = self.embedding(z)
        edge_index, edge_weight = self.interaction_graph(pos, batch)
        edge_attr = self.distance_expansion(edge_weight)
        for interaction in self.interactions:
            h = h + interaction(h, edge_index, edge_weight, edge_attr)
        return self.pool(self.act(self.lin1(h)), batch, num_graphs)
