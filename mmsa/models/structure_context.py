"""The ``mmsa`` model's structure-aware head: MMSA's hypergraph and memory anchors at finetuning.

It holds the pretrained fused embeddings of the *training* molecules and their kNN hypergraph (one
hyperedge per training molecule: itself and its nearest training molecules). A training molecule's
context is its ``HypergraphConv`` output over that hypergraph; any other molecule (validation,
test, or a new one in ``mmsa predict``) is attached by :meth:`StructureContext.for_new` with one
hyperedge of its own, so what the reported test score measures is exactly what a user gets for a
new molecule. With memory anchors, the soft assignment of the molecule's fused embedding to them
is projected and joined to the context.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch_geometric.nn import HypergraphConv

from mmsa.models.head_inputs import HeadInputs
from mmsa.plan.finetune_settings import FinetuneSettings


class StructureContext(nn.Module):
    """Structure-aware features from the pretrained space (fixed embeddings, trained convolution).

    Args:
        fused: pretrained fused embeddings of the training molecules (n, d).
        hyperedge_index: their kNN hypergraph as PyG incidence (2, nnz): node ids, hyperedge ids.
        anchors: the pretrained memory anchors (M, d), or None to leave them out.
        out_dim: size of each projected part.
        temperature: softmax temperature of the soft assignment to the anchors.
        k: neighbours (training molecules) in the hyperedge of an attached molecule.
    """

    name: ClassVar[str] = "structure"  # its entry in mmsa.plan.compared_models.HEADS
    meta_key: ClassVar[str] = "structure"  # its settings' key in a saved model's metadata
    reads_fused = True  # new molecules are placed by their pretrained fused embeddings

    def __init__(
        self,
        fused: Tensor,
        hyperedge_index: Tensor,
        anchors: Tensor | None,
        out_dim: int,
        temperature: float,
        k: int,
    ) -> None:
        super().__init__()
        self.register_buffer("fused", fused.float())
        self.register_buffer("hyperedge_index", hyperedge_index.long())
        self.conv = HypergraphConv(fused.shape[1], out_dim)
        self.use_anchors = anchors is not None
        if anchors is not None:
            self.register_buffer("anchors", F.normalize(anchors.float(), dim=-1))
            self.anchor_proj = nn.Linear(anchors.shape[1], out_dim)
        self.temperature, self.k = temperature, k
        self.out_dim = out_dim * (2 if self.use_anchors else 1)

    def forward(self, index: Tensor) -> Tensor:
        """Context of training molecules ``index`` (positions in ``fused``)."""
        context = F.relu(self.conv(self.fused, self.hyperedge_index))[index]
        return self._with_anchors(context, self.fused[index])

    def for_new(self, fused: Tensor) -> Tensor:
        """Context of molecules outside the training set, from their pretrained fused embeddings.

        Each new molecule gets one hyperedge: itself and its ``k`` most cosine-similar training
        molecules. New molecules are never members of each other's hyperedges, and the training
        hyperedges stay as they are, so one molecule's context does not depend on which other
        molecules are predicted with it.
        """
        n, m = len(self.fused), len(fused)
        base, new = F.normalize(self.fused, dim=-1), F.normalize(fused.float(), dim=-1)
        neighbours = (new @ base.t()).topk(min(self.k, n), dim=1).indices  # (m, k)
        edge_ids = torch.arange(n, n + m, device=fused.device)
        members = torch.cat([edge_ids.unsqueeze(1), neighbours], dim=1)
        extra = torch.stack([members.reshape(-1), edge_ids.repeat_interleave(members.shape[1])])
        incidence = torch.cat([self.hyperedge_index, extra], dim=1)
        context = F.relu(self.conv(torch.cat([self.fused, fused.float()]), incidence))[n:]
        return self._with_anchors(context, fused.float())

    def _with_anchors(self, context: Tensor, fused: Tensor) -> Tensor:
        if not self.use_anchors:
            return context
        z = F.normalize(fused, dim=-1)
        weights = torch.softmax(z @ self.anchors.t() / self.temperature, dim=-1)
        return torch.cat([context, F.relu(self.anchor_proj(weights @ self.anchors))], dim=-1)

    @classmethod
    def build(cls, inputs: HeadInputs, settings: FinetuneSettings) -> StructureContext:
        """The head over a seed's training molecules: their fused embeddings and hypergraph, the
        pretrained memory anchors, ``finetune.neighbours`` neighbours per new molecule."""
        if inputs.fused is None or inputs.incidence is None or inputs.neighbours is None:
            raise ValueError("the structure-aware head needs the embeddings, hypergraph and neighbour count")
        return cls(
            torch.as_tensor(inputs.fused),
            inputs.incidence,
            inputs.anchors,
            settings.structure_dim,
            settings.anchor_temperature,
            k=inputs.neighbours,
        )

    def new_context(
        self, fused: np.ndarray | None, keys: list[str] | None, device: torch.device | str
    ) -> Tensor:
        """:meth:`for_new` of molecules given as a prediction receives them."""
        if fused is None:
            raise ValueError("the structure-aware head needs the molecules' pretrained fused embeddings")
        return self.for_new(torch.as_tensor(fused, device=device))

    def saved_meta(self) -> dict[str, Any]:
        """What :meth:`from_saved` needs beside the weights."""
        return {
            "out_dim": self.conv.out_channels,
            "temperature": self.temperature,
            "k": self.k,
            "uses_anchors": self.use_anchors,
        }

    @classmethod
    def from_saved(cls, meta: dict[str, Any], state: dict[str, Tensor]) -> StructureContext:
        """The head of a saved model (its weights are loaded with the model's)."""
        anchors = state["structure.anchors"] if meta["uses_anchors"] else None
        return cls(
            state["structure.fused"],
            state["structure.hyperedge_index"],
            anchors,
            meta["out_dim"],
            meta["temperature"],
            meta["k"],
        )
