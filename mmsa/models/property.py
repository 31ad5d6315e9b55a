"""The finetuned property predictor: a GIN, optionally a head's context beside it, a linear layer.

Hu et al.'s finetuning protocol (the reference every graph-pretraining paper follows) puts a
plain linear layer on the pooled GIN embedding, with dropout inside the GIN only; so does this
module. A model with a head (:mod:`mmsa.models.heads`: ``mmsa``'s structure-aware
:class:`~mmsa.models.structure_context.StructureContext`, ``mmsa-labels``'
:class:`~mmsa.models.neighbour_labels.NeighbourLabels`) concatenates the head's context to the
GIN embedding before the linear layer. Heads are inductive: built on the training molecules, they
attach any other molecule (validation, test, or a new one in ``mmsa predict``) the same way, so the
reported test score is the score of the model a user deploys. With
``finetune.settings.descriptor_inputs`` every neural model also concatenates the molecule's RDKit
descriptors, standardized with its training part's statistics (as chemprop's extra molecule
features are), the scaling kept in the model for ``mmsa predict``.

Saved models (:func:`save_property_model`) are weights-only files with the metadata needed to
rebuild them; :func:`load_property_model` never unpickles code.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from torch_geometric.data import Batch, Data

from mmsa.models.descriptor_term import DescriptorScaler
from mmsa.models.gin import GINEncoder
from mmsa.models.heads import HEAD_TYPES, Head
from mmsa.models.model_files import FINETUNED, load_model_file
from mmsa.models.training_reference import TrainingReference
from mmsa.runtime.io import save_torch

# Molecules per forward pass without gradients (predictions, embeddings): no activations are
# kept for a backward pass, so a batch this size stays small in memory even for the paper model.
INFERENCE_BATCH = 256


class PropertyModel(nn.Module):
    """GIN graph embedding (+ a head's context) (+ standardized descriptors) -> linear task head
    (Hu et al.'s protocol)."""

    def __init__(
        self,
        gin: GINEncoder,
        num_tasks: int,
        structure: Head | None = None,
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
    return model.structure is not None and model.structure.reads_fused


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
    context = None if model.structure is None else model.structure.new_context(fused, keys, device)
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
    ``target_std``; the head's settings are added here (for a label context, the training
    molecules' keys too: which molecules' labels the model holds).
    """
    meta = dict(meta)
    if model.structure is not None:
        meta[model.structure.meta_key] = model.structure.saved_meta()
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
    heads = [head for head in HEAD_TYPES.values() if head.meta_key in meta]
    structure = heads[0].from_saved(meta[heads[0].meta_key], state) if heads else None
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
