"""2D graph encoder: the GIN of Hu et al. 2019 ("Strategies for Pre-training GNNs").

This mirrors ``GINConv``/``GNN`` of the pretrain-gnns code so that encoders pretrained here can
be finetuned like the baselines MMSA compares with: atom features and bond features are
embedded column by column and summed, bond embeddings are added to the neighbour messages,
every node receives a self loop whose bond type is :data:`BOND_TYPE_SELF_LOOP`, the update is a
2-layer MLP (emb -> 2 emb -> emb), each layer is followed by batch norm, ReLU (except the last
layer) and dropout. Node representations are combined across layers by a jumping-knowledge mode
("last", "sum" or "concat") and pooled per molecule ("mean", "sum" or "max").

The embedding tables work for both feature sets of :mod:`mmsa.features.graph` ("hu" has two
atom and two bond columns, "rich" more); only the vocabulary sizes differ.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch_geometric.nn import MessagePassing, global_add_pool, global_max_pool, global_mean_pool
from torch_geometric.utils import add_self_loops

from mmsa.features.graph import BOND_TYPE_SELF_LOOP, atom_feature_dims, bond_feature_dims

JK_MODES = ("last", "sum", "concat")
POOLINGS = {"mean": global_mean_pool, "sum": global_add_pool, "max": global_max_pool}


def uniform_dropout(h: Tensor, p: float, training: bool) -> Tensor:
    """Inverted dropout (``F.dropout``'s distribution), its mask drawn as ``uniform >= p``.

    On the CPU ``F.dropout`` draws its mask with MKL's Bernoulli generator: on a 1,100 x 128
    layer (one finetuning batch, one thread, avx2 pins) it takes 3.3 ms per call, this 1.8 ms,
    more than the GIN's 128 -> 256 linear layer (1.4 ms; benchmarks/dropout_mask.py, output in
    benchmarks/results/dropout_mask.md). ATen's uniform sampler is serial, so the mask is the
    same bytes under every ``cpu_kernels`` setting.
    """
    if not training or p == 0.0:
        return h
    if p >= 1.0:
        return torch.zeros_like(h)
    keep = torch.rand_like(h) >= p
    return h * keep * (1.0 / (1.0 - p))


class FeatureEncoder(nn.Module):
    """Sum of one embedding per integer feature column (OGB's AtomEncoder/BondEncoder)."""

    def __init__(self, dims: Sequence[int], emb_dim: int) -> None:
        super().__init__()
        self.dims = list(dims)
        self.embeddings = nn.ModuleList(nn.Embedding(d, emb_dim) for d in self.dims)
        for emb in self.embeddings:
            nn.init.xavier_uniform_(emb.weight)

    def forward(self, features: Tensor) -> Tensor:
        if features.dim() != 2 or features.size(1) != len(self.dims):
            raise ValueError(
                f"expected integer features of shape (n, {len(self.dims)}), got {tuple(features.shape)}"
            )
        features = features.long()
        out = self.embeddings[0](features[:, 0])
        for i in range(1, len(self.embeddings)):
            out = out + self.embeddings[i](features[:, i])
        return out


class AtomEncoder(FeatureEncoder):
    """Embeds the atom feature columns of ``feature_set`` (or explicit vocabulary ``dims``)."""

    def __init__(self, emb_dim: int, feature_set: str = "hu", dims: Sequence[int] | None = None):
        super().__init__(dims if dims is not None else atom_feature_dims(feature_set), emb_dim)


class GINConv(MessagePassing):
    r"""The GIN layer with edge features of Hu et al. 2019 ("Strategies for Pre-training GNNs").

    .. math::
        \mathbf{x}^{\prime}_i = \mathrm{MLP}\Big(\sum_{j \in \mathcal{N}(i) \cup \{i\}}
        \big(\mathbf{x}_j + \mathbf{e}_{j,i}\big)\Big),
        \qquad \mathbf{e}_{j,i} = \sum_c \mathrm{Emb}_c(\text{bond}_{j,i,c})

    with :math:`\mathrm{MLP}` = Linear(d, 2d), ReLU, Linear(2d, d). Self loops are added here,
    with bond type :data:`BOND_TYPE_SELF_LOOP` and every other bond column 0, so that a node's own
    state enters the sum as in the reference implementation.

    Args:
        emb_dim: node and edge embedding size :math:`d`.
        bond_dims: vocabulary size of each integer bond feature column.
        aggr: neighbourhood aggregation (default ``"add"``, as in GIN).

    Shapes:
        - **input:** node features :math:`(|\mathcal{V}|, d)`, edge indices
          :math:`(2, |\mathcal{E}|)`, integer bond features :math:`(|\mathcal{E}|, C)`
        - **output:** node features :math:`(|\mathcal{V}|, d)`
    """

    def __init__(self, emb_dim: int, bond_dims: Sequence[int], aggr: str = "add") -> None:
        super().__init__(aggr=aggr)
        self.mlp = nn.Sequential(nn.Linear(emb_dim, 2 * emb_dim), nn.ReLU(), nn.Linear(2 * emb_dim, emb_dim))
        self.bond_encoder = FeatureEncoder(bond_dims, emb_dim)

    def forward(self, x: Tensor, edge_index: Tensor, edge_attr: Tensor) -> Tensor:
        num_nodes = x.size(0)
        edge_index, _ = add_self_loops(edge_index, num_nodes=num_nodes)
        loop_attr = torch.zeros(num_nodes, edge_attr.size(1), dtype=torch.long, device=x.device)
        loop_attr[:, 0] = BOND_TYPE_SELF_LOOP
        edge_attr = torch.cat([edge_attr.long(), loop_attr], dim=0)
        return self.propagate(edge_index, x=x, edge_attr=self.bond_encoder(edge_attr))

    def message(self, x_j: Tensor, edge_attr: Tensor) -> Tensor:
        return x_j + edge_attr

    def update(self, aggr_out: Tensor) -> Tensor:
        return self.mlp(aggr_out)


class GINEncoder(nn.Module):
    r"""Hu et al.'s GIN: integer atom/bond features -> (node representations, graph embedding).

    :class:`GINConv` layers, each followed by batch norm, ReLU (but the last) and dropout.

    Args:
        feature_set: ``"hu"`` (default) or ``"rich"`` (vocabulary sizes from :mod:`mmsa.features.graph`).
        num_layers: message-passing layers (default ``5``, as in Hu et al.).
        emb_dim: hidden size (default ``300``, as in Hu et al.).
        drop_ratio: dropout after every layer (default ``0.0``).
        jk: ``"last"`` (default), ``"sum"`` or ``"concat"`` (concat includes the input embedding,
            as in Hu et al.).
        pool: ``"mean"`` (default), ``"sum"`` or ``"max"`` readout.
        atom_dims, bond_dims: explicit vocabulary sizes overriding ``feature_set`` (default ``None``).

    Shapes:
        - **input:** integer atom features :math:`(|\mathcal{V}|, C_a)`, edge indices
          :math:`(2, |\mathcal{E}|)`, integer bond features :math:`(|\mathcal{E}|, C_b)`, batch
          vector :math:`(|\mathcal{V}|)`
        - **output:** node representations :math:`(|\mathcal{V}|, \text{out\_dim})` and graph
          embeddings :math:`(G, \text{out\_dim})`; ``out_dim`` is ``emb_dim``, or
          ``(num_layers + 1) * emb_dim`` with ``jk="concat"``
    """

    def __init__(
        self,
        feature_set: str = "hu",
        num_layers: int = 5,
        emb_dim: int = 300,
        drop_ratio: float = 0.0,
        jk: str = "last",
        pool: str = "mean",
        atom_dims: Sequence[int] | None = None,
        bond_dims: Sequence[int] | None = None,
    ) -> None:
        super().__init__()
        if num_layers < 1:
            raise ValueError("GINEncoder needs at least one layer")
        if jk not in JK_MODES:
            raise ValueError(f"unknown jk mode {jk!r}; use one of {JK_MODES}")
        if pool not in POOLINGS:
            raise ValueError(f"unknown pooling {pool!r}; use one of {tuple(POOLINGS)}")
        self.num_layers, self.emb_dim, self.drop_ratio = num_layers, emb_dim, drop_ratio
        self.jk, self.pool_name = jk, pool
        self.atom_encoder = AtomEncoder(emb_dim, feature_set, atom_dims)
        bond_dims = list(bond_dims) if bond_dims is not None else bond_feature_dims(feature_set)
        self.convs = nn.ModuleList(GINConv(emb_dim, bond_dims) for _ in range(num_layers))
        self.norms = nn.ModuleList(nn.BatchNorm1d(emb_dim) for _ in range(num_layers))
        self.out_dim = emb_dim * (num_layers + 1) if jk == "concat" else emb_dim

    def forward(
        self,
        x: Tensor,
        edge_index: Tensor,
        edge_attr: Tensor,
        batch: Tensor | None = None,
        num_graphs: int | None = None,
    ) -> tuple[Tensor, Tensor]:
        """Atom features (n, A), edges (2, E), bond features (E, B) -> ((n, D), (G, D))."""
        if batch is None:
            batch = torch.zeros(x.size(0), dtype=torch.long, device=x.device)
        h = self.atom_encoder(x)
        hs = [h]
        for layer, (conv, norm) in enumerate(zip(self.convs, self.norms, strict=True)):
            h = norm(conv(h, edge_index, edge_attr))
            if layer < self.num_layers - 1:
                h = F.relu(h)
            h = uniform_dropout(h, self.drop_ratio, self.training)
            hs.append(h)
        if self.jk == "last":
            node = hs[-1]
        elif self.jk == "sum":
            node = torch.stack(hs, dim=0).sum(dim=0)
        else:
            node = torch.cat(hs, dim=1)
        graph = POOLINGS[self.pool_name](node, batch, size=num_graphs)
        return node, graph
