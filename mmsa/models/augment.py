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
from torch import Tensor

from mmsa.features.graph import ATOM_TYPE_MASK


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
