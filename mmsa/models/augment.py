"""Augmentations of the 2D graph view for pretraining, and the masked-atom target.

Without them the cross-modal contrastive task can be solved from a molecule's composition
alone: within a batch of 64 drug-like molecules the element counts are nearly always unique,
so the GIN, image CNN and SchNet can agree on "which molecule is which" by counting atoms and
the GIN learns little about structure (``benchmarks/pretrain_diagnostics.py`` measures it). The
field's remedies are used here, on the graph view only (the image and the conformer stay whole):

* **atom masking** (Hu et al. 2020's attribute masking, GraphCL's node masking): a random share
  of atoms gets the mask token in every feature column; the GIN must place the molecule from
  the structure around them, and a linear head on its node states predicts the masked atom
  types (the ``masking`` loss term), a node-level objective known to transfer to finetuning;
* **bond dropping** (GraphCL's edge perturbation): a random share of bonds is removed (both
  directions together).

Randomness comes from torch's global generator, which the trainer reseeds every epoch, so the
augmented views are reproducible.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mmsa.features.graph import ATOM_TYPE_MASK, ATOM_TYPE_UNKNOWN
from mmsa.models.losses import zero_loss
from mmsa.runtime.distributed import GlobalBatch


@dataclass
class GraphView:
    """A (possibly augmented) graph: features, bonds, and which atoms were masked."""

    x: Tensor
    edge_index: Tensor
    edge_attr: Tensor
    masked: Tensor  # bool (n_atoms,)


def augment_graph(
    x: Tensor, edge_index: Tensor, edge_attr: Tensor, mask_rate: float, drop_rate: float
) -> GraphView:
    """Mask ``mask_rate`` of the atoms and drop ``drop_rate`` of the bonds.

    Bonds are stored once per direction in consecutive columns (``2k`` and ``2k + 1``, see
    :func:`mmsa.features.graph.mol_to_graph`), so a bond is dropped by dropping its pair.
    """
    masked = torch.rand(x.size(0), device=x.device) < mask_rate
    if mask_rate > 0:
        x = x.clone()
        x[masked] = 0
        x[masked, 0] = ATOM_TYPE_MASK
    if drop_rate > 0 and edge_index.size(1):
        if edge_index.size(1) % 2:
            raise ValueError("bonds must be stored as pairs of directed edges")
        keep = (torch.rand(edge_index.size(1) // 2, device=x.device) >= drop_rate).repeat_interleave(2)
        edge_index, edge_attr = edge_index[:, keep], edge_attr[keep]
    return GraphView(x, edge_index, edge_attr, masked)


def atom_type_head(node_dim: int) -> nn.Linear:
    """The masked-atom head: node state -> atom type (atomic number - 1, or unknown)."""
    return nn.Linear(node_dim, ATOM_TYPE_UNKNOWN + 1)


def masked_atom_loss(
    head: nn.Linear,
    nodes: Tensor,
    masked: Tensor,
    atom_types: Tensor,
    global_batch: GlobalBatch | None = None,
) -> Tensor:
    """Cross-entropy of the masked atoms' types predicted by ``head`` from their GIN node states
    (the mean over the global batch's masked atoms with ``global_batch``, as one process would
    take it)."""
    if bool(masked.any()):
        logits = head(nodes[masked]).float()
        targets = atom_types[masked].long().clamp(max=ATOM_TYPE_UNKNOWN)
        loss = F.cross_entropy(logits, targets, reduction="mean" if global_batch is None else "sum")
    else:
        loss = zero_loss(nodes, head.weight)
    if global_batch is None:
        return loss
    totals = global_batch.total(torch.stack([loss, masked.sum().float()]))
    return totals[0] / totals[1].clamp(min=1.0)
