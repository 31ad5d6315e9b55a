"""The finetuned property predictor: a GIN, optionally MMSA's structure-aware head, a linear head.

Hu et al.'s finetuning protocol (the reference every graph-pretraining paper follows) puts a
plain linear layer on the pooled GIN embedding, with dropout inside the GIN only; so does this
module. The ``mmsa`` model adds :class:`StructureContext` and concatenates its output to the
GIN embedding before the linear layer; ``mmsa-labels`` concatenates
:class:`~mmsa.models.neighbour_labels.NeighbourLabels` instead (its training neighbours' labels).
With ``finetune.settings.descriptor_inputs`` every neural model also concatenates the molecule's
RDKit descriptors, standardized with its training part's statistics (as chemprop's extra
molecule features are), the scaling kept in the model for ``mmsa predict``.

The structure-aware head is inductive. It holds the pretrained fused embeddings of the
*training* molecules and their kNN hypergraph (one hyperedge per training molecule: itself and
its nearest training molecules). A training molecule's context is its ``HypergraphConv`` output
over that hypergraph; any other molecule (validation, test, or a new one in ``mmsa predict``)
is attached by :meth:`StructureContext.for_new` with one hyperedge of its own, so what the
reported test score measures is exactly what a user gets for a new molecule.

Saved models (:func:`save_property_model`) are weights-only files with the metadata needed to
rebuild them; :func:`load_property_model` never unpickles code.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch_geometric.data import Batch, Data
from torch_geometric.nn import HypergraphConv

from mmsa.models.descriptor_term import DescriptorScaler
from mmsa.models.graph import GINEncoder
from mmsa.models.model_files import FINETUNED, load_model_file
from mmsa.models.neighbour_labels import NeighbourLabels
from mmsa.models.training_reference import TrainingReference
from mmsa.runtime.io import save_torch

# Molecules per forward pass without gradients (predictions, embeddings): no activations are
# kept for a backward pass, so a batch this size stays small in memory even for the paper model.
INFERENCE_BATCH = 256


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


class PropertyModel(nn.Module):
    """GIN graph embedding (+ structure context) (+ standardized descriptors) -> linear task head
    (Hu et al.'s protocol)."""

    def __init__(
        self,
        gin: GINEncoder,
        num_tasks: int,
        structure: StructureContext | NeighbourLabels | None = None,
        descriptors: DescriptorScaler | None = None,
    ) -> None:
        super().__init__()
        self.gin, self.structure, self.descriptors = gin, structure, descriptors
        width = gin.out_dim + (structure.out_dim if structure is not None else 0)
        width += len(descriptors.centre) if descriptors is not None else 0
        self.head = nn.Linear(width, num_tasks)

    def forward(self, batch: Any, context: Tensor | None = None) -> Tensor:
        """Task outputs (logits or standardized values). ``context`` is the structure context of
        molecules outside the training set; without it, it is looked up by ``batch.idx``."""
        _, h = self.gin(batch.x, batch.edge_index, batch.edge_attr, batch.batch, batch.num_graphs)
        if self.structure is not None:
            h = torch.cat([h, self.structure(batch.idx) if context is None else context], dim=-1)
        if self.descriptors is not None:
            h = torch.cat([h, self.descriptors.standardize(batch.descriptors)[0]], dim=-1)
        return self.head(h)


def build_gin(arch: dict[str, Any], dropout: float, pretrained: GINEncoder | None = None) -> GINEncoder:
    """A GIN of architecture ``arch`` (an MMSA model config) with dropout ``dropout`` in every
    layer, starting from ``pretrained``'s weights when given."""
    gin = GINEncoder(
        arch["feature_set"], arch["gnn_layers"], arch["gnn_dim"], dropout, arch["gnn_jk"], arch["gnn_pool"]
    )
    if pretrained is not None:
        gin.load_state_dict(pretrained.state_dict())
    return gin


def graph_data(graphs: list[Data]) -> list[Data]:
    """Graph and descriptor copies of featurized molecules, numbered by position (``idx``).

    The finetuned model reads the graph (and, with descriptor inputs, the descriptors); dropping
    images and coordinates keeps batches small.
    """
    return [
        Data(
            x=d.x,
            edge_index=d.edge_index,
            edge_attr=d.edge_attr,
            descriptors=d.descriptors,
            idx=torch.tensor([i]),
        )
        for i, d in enumerate(graphs)
    ]


def reads_fused(model: PropertyModel) -> bool:
    """Whether ``model`` places new molecules by their pretrained fused embeddings (the ``mmsa``
    head, and ``mmsa-labels`` with neighbours in the fused space)."""
    if isinstance(model.structure, NeighbourLabels):
        return model.structure.space == "fused"
    return model.structure is not None


@torch.no_grad()
def predict_outputs(
    model: PropertyModel,
    graphs: list[Data],
    fused: np.ndarray | None,
    device: torch.device | str = "cpu",
    keys: list[str] | None = None,
) -> np.ndarray:
    """Raw outputs (n, tasks) of ``model`` for molecules outside its training set.

    ``fused`` holds their pretrained fused embeddings (needed where :func:`reads_fused`) and
    ``keys`` their canonical keys (needed by a label context in ECFP space). Used both for the
    validation and test molecules in finetuning and by ``mmsa predict``, so the reported test
    predictions and a user's predictions come from the same code.
    """
    model.eval()
    num_tasks = model.head.out_features
    if not graphs:
        return np.zeros((0, num_tasks))
    context = None
    if isinstance(model.structure, NeighbourLabels):
        context = model.structure.for_new(fused, keys)
    elif model.structure is not None:
        if fused is None:
            raise ValueError("the structure-aware head needs the molecules' pretrained fused embeddings")
        context = model.structure.for_new(torch.as_tensor(fused, device=device))
    out = []
    for start in range(0, len(graphs), INFERENCE_BATCH):
        batch = Batch.from_data_list(graphs[start : start + INFERENCE_BATCH]).to(device)
        part = None if context is None else context[start : start + INFERENCE_BATCH]
        out.append(model(batch, part).float().cpu())
    return torch.cat(out).double().numpy()


def to_property_values(outputs: np.ndarray, task_type: str, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    """Network outputs -> predictions: P(label = 1) for classification, values for regression
    (undoing the training-set standardization of the targets)."""
    if task_type == "classification":
        return 1.0 / (1.0 + np.exp(-outputs))
    return outputs * np.asarray(std) + np.asarray(mean)


def save_property_model(
    model: PropertyModel,
    meta: dict[str, Any],
    path: str | os.PathLike,
    reference: TrainingReference | None = None,
) -> None:
    """Weights and the metadata :func:`load_property_model` needs (a weights-only file), and the
    training molecules (``reference``) that ``mmsa predict`` shows as each new molecule's
    nearest known molecules.

    ``meta`` must hold ``arch``, ``dropout``, ``tasks``, ``task_type``, ``target_mean`` and
    ``target_std``; the structure head's settings are added here (for a label context, the
    training molecules' keys too: which molecules' labels the model holds).
    """
    meta = dict(meta)
    if isinstance(model.structure, NeighbourLabels):
        s = model.structure
        meta["neighbour_labels"] = {"space": s.space, "k": s.k, "train_keys": s.train_keys}
    elif model.structure is not None:
        s = model.structure
        meta["structure"] = {
            "out_dim": s.conv.out_channels,
            "temperature": s.temperature,
            "k": s.k,
            "uses_anchors": s.use_anchors,
        }
    if model.descriptors is not None:
        meta["descriptor_inputs"] = {"n": len(model.descriptors.centre), "clip": model.descriptors.clip}
    saved = {"meta": meta, "state_dict": model.state_dict()}
    if reference is not None:
        saved["reference"] = reference.to_saved()
    save_torch(saved, path)


def load_property_model(path: str | os.PathLike) -> tuple[PropertyModel, dict[str, Any]]:
    """A model saved by :func:`save_property_model`, in evaluation mode, and its metadata (with
    ``reference``, its :class:`TrainingReference`, or None for a file saved without one); any
    other file is a :class:`~mmsa.plan.model_paths.ModelFileError` saying what it is."""
    saved = load_model_file(path, FINETUNED)
    meta, state = saved["meta"], saved["state_dict"]
    structure: StructureContext | NeighbourLabels | None = None
    if "neighbour_labels" in meta:
        s = meta["neighbour_labels"]
        structure = NeighbourLabels(
            s["space"],
            state["structure.reference"],
            state["structure.labels"],
            s["k"],
            s["train_keys"],
            state["structure.train_context"],
        )
    elif "structure" in meta:
        s = meta["structure"]
        anchors = state["structure.anchors"] if s["uses_anchors"] else None
        structure = StructureContext(
            state["structure.fused"],
            state["structure.hyperedge_index"],
            anchors,
            s["out_dim"],
            s["temperature"],
            s["k"],
        )
    descriptors = None
    if "descriptor_inputs" in meta:
        descriptors = DescriptorScaler(meta["descriptor_inputs"]["n"], meta["descriptor_inputs"]["clip"])
    model = PropertyModel(
        build_gin(meta["arch"], meta["dropout"]), len(meta["tasks"]), structure, descriptors
    )
    model.load_state_dict(state)
    reference = saved.get("reference")
    meta = {**meta, "reference": None if reference is None else TrainingReference.from_saved(reference)}
    return model.eval(), meta
