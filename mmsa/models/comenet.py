"""3D encoder: ComENet (Wang et al. 2022), the MMSA paper's conformer encoder, one embedding per molecule.

Why it is assembled here: PyG 2.8.1 ships no ComENet (its 3D models are SchNet, DimeNet(++) and
ViSNet), and the reference implementation (DIG, ``dig.threedgraph.method.ComENet``) needs
torch-cluster and torch-scatter, which are not installable here. This module follows the reference
architecture and its feature definitions but is built from library parts:

* PyG: glorot-initialised :class:`~torch_geometric.nn.Linear` layers, :class:`GraphConv` (with
  channel-wise edge weights), :class:`GraphNorm`, DimeNet's normalised spherical Bessel formulas
  (``dimenet_utils.bessel_basis``); sympy: the real spherical harmonics (``Znm``);
* :mod:`.geometry`: the interaction graph (:func:`radius_interaction_graph` instead of
  ``radius_graph``), the readout and the conformer-mask contract (:class:`ConformerEncoder`).

Each edge j -> i is described in i's local frame, built from i's nearest (f_i) and
second-nearest (s_i) neighbours: the distance d, the angle theta between the edge and f_i, the
dihedral phi about the edge from the plane of f_i to that of s_i, and the rotation tau about the
edge from a reference of j to one of i. The features are 1-hop only, so a layer costs O(edges).

Three departures from the reference code, the first two so that rotations change nothing:

* it folds phi and tau into [0, pi] (``angle += pi`` where negative). Planar fragments (aromatic
  rings: dihedrals at 0 or pi) then jump between the two ends under rounding noise, and a mere
  rotation of the input changed embeddings by ~0.3. Here the angles stay in atan2's (-pi, pi]:
  the harmonics are 2 pi-periodic in phi and tau enters through cos(tau) only (m = 0), so the
  features are continuous (and a mirror image, which flips phi, still changes them);
* where j is one of i's references, phi's plane collapses onto the edge; the reference's value
  is then the atan2 of a cross product's rounding noise. Here it is 0 (likewise tau for an atom
  with a single neighbour);
* it stops before the scalar output layer, pooling the atom states into a
  ``hidden_channels``-dimensional molecule embedding.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import sympy as sym
import torch
from torch import Tensor, nn
from torch_geometric.nn import GraphConv, GraphNorm, Linear
from torch_geometric.nn.models.dimenet_utils import bessel_basis

from mmsa.models.geometry import NUM_ELEMENTS, ConformerEncoder


def glorot_linear(in_channels: int, out_channels: int, bias: bool = True) -> Linear:
    """The reference's dense layer: glorot weights, zero bias."""
    return Linear(in_channels, out_channels, bias, weight_initializer="glorot", bias_initializer="zeros")


def torch_function(args: tuple[sym.Symbol, ...], expr: sym.Expr) -> Callable[..., Tensor]:
    """A sympy formula as a torch function of tensors (constants broadcast to the input's shape)."""
    fn = sym.lambdify(args, sym.N(expr), modules=[{"sin": torch.sin, "cos": torch.cos}, "math"])
    return lambda *values: torch.zeros_like(values[0]) + fn(*values)


class BesselHarmonicBasis(nn.Module):
    """ComENet's edge features: spherical Bessel radial functions times real spherical harmonics.

    For degree l < ``num_spherical`` and root n < ``num_radial``: j_l(z_ln d / cutoff) * Y_lm.
    With ``azimuthal`` the harmonics take (theta, phi) and m runs over -l..l
    (``num_radial * num_spherical**2`` features); without, they take one angle and m = 0
    (``num_radial * num_spherical`` features).
    """

    def __init__(self, num_radial: int, num_spherical: int, cutoff: float, azimuthal: bool) -> None:
        super().__init__()
        x = sym.Symbol("x")  # the variable of PyG's Bessel formulas
        theta, phi = sym.symbols("theta phi", real=True)  # real: Znm expands to sines and cosines
        angles = (theta, phi) if azimuthal else (theta,)
        self.cutoff, self.num_radial, self.num_spherical = cutoff, num_radial, num_spherical
        self.radial = [
            torch_function((x,), f) for row in bessel_basis(num_spherical, num_radial) for f in row
        ]
        orders = [
            (deg, m) for deg in range(num_spherical) for m in (range(-deg, deg + 1) if azimuthal else [0])
        ]
        self.harmonics = [
            torch_function(angles, sym.expand_complex(sym.Znm(deg, m, theta, phi).expand(func=True)))
            for deg, m in orders
        ]
        self.register_buffer("degree", torch.tensor([deg for deg, _ in orders]), persistent=False)
        self.size = len(orders) * num_radial

    def forward(self, dist: Tensor, *angles: Tensor) -> Tensor:
        """(E,) distances and angles -> (E, size) features."""
        x = dist / self.cutoff
        rbf = torch.stack([f(x) for f in self.radial], dim=1).view(-1, self.num_spherical, self.num_radial)
        sph = torch.stack([f(*angles) for f in self.harmonics], dim=1)
        return (rbf[:, self.degree] * sph.unsqueeze(-1)).flatten(1)


def two_nearest(group: Tensor, other: Tensor, dist: Tensor, num_nodes: int) -> tuple[Tensor, Tensor]:
    """Per edge: the nearest and second-nearest ``other`` atom among the edges of its ``group`` atom.

    A group atom with a single edge gets that neighbour twice; ties go to the earlier edge.
    """
    order = torch.argsort(dist, stable=True)
    order = order[torch.argsort(group[order], stable=True)]  # by group, then by distance
    degree = torch.bincount(group, minlength=num_nodes)
    first = (torch.cumsum(degree, 0) - degree)[group]
    sorted_other = other[order]
    return sorted_other[first], sorted_other[first + (degree[group] > 1).long()]


def dihedral(axis: Tensor, a: Tensor, b: Tensor) -> Tensor:
    """Signed angle in (-pi, pi] about ``axis`` from the plane (axis, a) to the plane (axis, b)."""
    plane_a, plane_b = torch.linalg.cross(axis, a), torch.linalg.cross(axis, b)
    cos = (plane_a * plane_b).sum(-1)
    sin = (torch.linalg.cross(plane_a, plane_b) * axis).sum(-1) / axis.norm(dim=-1)
    return torch.atan2(sin, cos)


def edge_frame_angles(pos: Tensor, edge_index: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """ComENet's (d, theta, phi, tau) of every edge j -> i (row 0 = j, row 1 = i)."""
    j, i = edge_index
    vec = pos[j] - pos[i]
    dist = vec.norm(dim=-1)
    f_i, s_i = two_nearest(i, j, dist, pos.size(0))  # i's references
    f_j, s_j = two_nearest(j, i, dist, pos.size(0))  # j's references (the centres j sends to)
    to_f, to_s = pos[f_i] - pos[i], pos[s_i] - pos[i]
    theta = torch.atan2(torch.linalg.cross(-vec, to_f).norm(dim=-1), (-vec * to_f).sum(-1))
    # Where j is itself a reference, a plane collapses onto the edge and the angle is 0 by definition
    # (what exact arithmetic gives; the cross product of a vector with itself is only ~1e-7 in floats).
    phi = dihedral(vec, to_f, to_s).masked_fill((f_i == j) | (s_i == j), 0.0)
    # Rotation about the edge: a reference that is the other end of the edge is replaced by the next
    # (it stays the other end only for an atom with a single neighbour).
    i_ref = torch.where(f_i == j, s_i, f_i)
    j_ref = torch.where(f_j == i, s_j, f_j)
    tau = dihedral(vec, pos[j] - pos[j_ref], pos[i_ref] - pos[i])
    tau = tau.masked_fill((i_ref == j) | (j_ref == i), 0.0)
    return dist, theta, phi, tau


class EdgeFeatureGraphConv(GraphConv):
    """GraphConv with one weight per edge and channel (PyG's scales a message by one scalar)."""

    def message(self, x_j: Tensor, edge_weight: Tensor) -> Tensor:
        return edge_weight * x_j


class ComENetInteraction(nn.Module):
    """One ComENet block: two edge-feature convolutions (frame, rotation), residual layers, GraphNorm."""

    def __init__(
        self,
        hidden_channels: int,
        middle_channels: int,
        frame_size: int,
        rotation_size: int,
        num_residual: int,
    ) -> None:
        super().__init__()
        h = hidden_channels
        self.act = nn.SiLU()
        self.lin = glorot_linear(h, h)
        self.frame_filter = nn.Sequential(
            glorot_linear(frame_size, middle_channels, bias=False),
            glorot_linear(middle_channels, h, bias=False),
        )
        self.rotation_filter = nn.Sequential(
            glorot_linear(rotation_size, middle_channels, bias=False),
            glorot_linear(middle_channels, h, bias=False),
        )
        self.conv1, self.conv2 = EdgeFeatureGraphConv(h, h), EdgeFeatureGraphConv(h, h)
        self.lin1, self.lin2 = glorot_linear(h, h), glorot_linear(h, h)
        self.lin_cat = glorot_linear(2 * h, h)
        self.residuals = nn.ModuleList(glorot_linear(h, h) for _ in range(num_residual))
        self.norm = GraphNorm(h)
        self.final = glorot_linear(h, h)

    def forward(
        self, x: Tensor, frame: Tensor, rotation: Tensor, edge_index: Tensor, batch: Tensor, num_graphs: int
    ) -> Tensor:
        x = self.act(self.lin(x))
        h1 = self.act(self.lin1(self.conv1(x, edge_index, self.frame_filter(frame))))
        h2 = self.act(self.lin2(self.conv2(x, edge_index, self.rotation_filter(rotation))))
        h = self.lin_cat(torch.cat([h1, h2], dim=1)) + x
        for lin in self.residuals:
            h = h + self.act(lin(h))
        return self.final(self.norm(h, batch, num_graphs))


class ComENetEncoder(ConformerEncoder):
    """ComENet trunk: (atomic numbers, positions, molecule ids, conformer mask) -> (G, hidden).

    Defaults are the published ones (Wang et al. 2022); ``max_num_neighbors`` = 32 is what the
    reference gets from ``radius_graph``, and the readout replaces its sum of scalar outputs.

    Args:
        hidden_channels: atom state and embedding size.
        middle_channels: bottleneck of the two-layer maps from edge features to filters.
        num_layers: interaction blocks.
        num_radial, num_spherical: Bessel roots and harmonic degrees of the edge features.
        num_output_layers: residual layers per block and dense layers before the readout.
        cutoff, max_num_neighbors, readout: as in :class:`ConformerEncoder`.
    """

    def __init__(
        self,
        hidden_channels: int = 256,
        middle_channels: int = 64,
        num_layers: int = 4,
        num_radial: int = 3,
        num_spherical: int = 2,
        num_output_layers: int = 3,
        cutoff: float = 8.0,
        max_num_neighbors: int | None = 32,
        readout: str = "mean",
    ) -> None:
        super().__init__(hidden_channels, cutoff, max_num_neighbors, readout)
        self.frame_basis = BesselHarmonicBasis(num_radial, num_spherical, cutoff, azimuthal=True)
        self.rotation_basis = BesselHarmonicBasis(num_radial, num_spherical, cutoff, azimuthal=False)
        self.embedding = nn.Embedding(NUM_ELEMENTS, hidden_channels)
        nn.init.uniform_(self.embedding.weight, -math.sqrt(3), math.sqrt(3))
        self.act = nn.SiLU()
        self.interactions = nn.ModuleList(
            ComENetInteraction(
                hidden_channels,
                middle_channels,
                self.frame_basis.size,
                self.rotation_basis.size,
                num_output_layers,
            )
            for _ in range(num_layers)
        )
        self.lins = nn.ModuleList(
            glorot_linear(hidden_channels, hidden_channels) for _ in range(num_output_layers)
        )

    def embed_conformers(self, z: Tensor, pos: Tensor, batch: Tensor, num_graphs: int) -> Tensor:
        edge_index, _ = self.interaction_graph(pos, batch)
        dist, theta, phi, tau = edge_frame_angles(pos, edge_index)
        frame, rotation = self.frame_basis(dist, theta, phi), self.rotation_basis(dist, tau)
        x = self.act(self.embedding(z))
        for interaction in self.interactions:
            x = interaction(x, frame, rotation, edge_index, batch, num_graphs)
        for lin in self.lins:
            x = self.act(lin(x))
        return self.pool(x, batch, num_graphs)
