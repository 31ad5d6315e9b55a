"""MMSA's pretraining objective: its loss terms, one class each, in the order they compute and
are summed (what a term is: :mod:`.loss_term`).

The order is part of every result: terms compute in it (each phase's in turn), ``losses.csv``
has a column per term in it, and the total is summed in it (float addition is not associative).
The masked-atom and descriptor terms read the encoders on each rank's molecules; the paper's
terms come after: cross-modal contrastive alignment of the views, reconstruction of the views
from the fused embedding, the hypergraph term and the memory anchors.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import Tensor, nn

from mmsa.features.descriptors import DESCRIPTOR_NAMES
from mmsa.models.augment import atom_type_head, masked_atom_loss
from mmsa.models.descriptor_term import DescriptorTerm
from mmsa.models.fusion import reconstruction_loss
from mmsa.models.knn_hypergraph import HypergraphEncoder, hypergraph_loss
from mmsa.models.loss_term import LossTerm, StepViews, mean_over
from mmsa.models.losses import pairwise_info_nce
from mmsa.models.memory import MemoryBank
from mmsa.models.mmsa_config import MMSAConfig


class MaskingTerm(LossTerm):
    """The types of the masked atoms, predicted from their GIN node states by a linear head, in
    training only (evaluation sees the whole graph) (:mod:`.augment`)."""

    name, switch, phase, attribute = "masking", "graph_mask_rate", "local", "atom_head"

    def on(self, cfg: MMSAConfig) -> bool:
        return cfg.use_graph and cfg.graph_mask_rate > 0

    def module(self, cfg: MMSAConfig, encoder_dims: Mapping[str, int]) -> nn.Module:
        return atom_type_head(encoder_dims["graph"])

    def compute(self, step: StepViews) -> Tensor | None:
        if not step.augmented or step.graph_view is None or step.nodes is None:
            return None
        head = step.modules[self.name]
        assert isinstance(head, nn.Linear)
        atom_types = step.batch.x[:, 0]
        return masked_atom_loss(head, step.nodes, step.graph_view.masked, atom_types, step.global_batch)


class DescriptorsTerm(LossTerm):
    """The standardized RDKit descriptors, predicted from the GIN's pooled embedding on a random
    share of them per step, drawn on each rank's molecules (:mod:`.descriptor_term`)."""

    name, switch, phase, attribute = "descriptors", "descriptors", "local", "descriptor_term"

    def module(self, cfg: MMSAConfig, encoder_dims: Mapping[str, int]) -> nn.Module:
        # the config refuses the term without the graph view
        return DescriptorTerm(
            encoder_dims["graph"], len(DESCRIPTOR_NAMES), cfg.descriptor_rate, cfg.descriptor_clip
        )

    def compute(self, step: StepViews) -> Tensor:
        term = step.modules[self.name]
        assert isinstance(term, DescriptorTerm)
        return mean_over(term.sums(step.feats["graph"], step.batch.descriptors), step.global_batch)


class ContrastiveTerm(LossTerm):
    """Symmetric InfoNCE between the projections of every pair of views, the mean over pairs
    (none with fewer than two views); each pair's value, detached, is kept for the log
    (:mod:`.losses`)."""

    name, switch, phase = "contrastive", "contrastive", "views"

    def compute(self, step: StepViews) -> Tensor | None:
        if len(step.proj) < 2:
            return None
        pair_losses = pairwise_info_nce(step.proj, step.masks, step.config.contrastive_temperature)
        step.pairs = {k: v.detach() for k, v in pair_losses.items()}
        return torch.stack(list(pair_losses.values())).mean()


class ReconstructionTerm(LossTerm):
    """Each view's projection reconstructed from the fused embedding by the fusion's decoders
    (built with the fusion when the switch is on) (:mod:`.fusion`)."""

    name, switch, phase = "reconstruction", "fusion_reconstruction", "fused"

    def compute(self, step: StepViews) -> Tensor:
        assert step.fusion is not None
        return reconstruction_loss(step.fusion.reconstructions, step.proj, step.masks)


class HypergraphTerm(LossTerm):
    """The kNN hypergraph over the batch's fused embeddings (the memory anchors as extra nodes
    with ``hypergraph_anchor_nodes``), convolved and aligned with them; its output is the
    model's structure-aware embedding (:mod:`.knn_hypergraph`)."""

    name, switch, phase, attribute = "hypergraph", "hypergraph", "fused", "hypergraph"

    def module(self, cfg: MMSAConfig, encoder_dims: Mapping[str, int]) -> nn.Module:
        return HypergraphEncoder(
            cfg.embed_dim, cfg.hypergraph_layers, cfg.hypergraph_k, cfg.hypergraph_dropout
        )

    def compute(self, step: StepViews) -> Tensor:
        assert step.fusion is not None
        cfg, fused, memory = step.config, step.fusion.fused, step.modules.get("memory")
        anchors = memory.anchors if isinstance(memory, MemoryBank) and cfg.hypergraph_anchor_nodes else None
        step.structure = step.modules[self.name](fused, anchors)
        return hypergraph_loss(step.structure, fused, cfg.hypergraph_temperature)


class MemoryTerm(LossTerm):
    """The fused embeddings aligned with the memory anchors, which move by momentum in training
    (:mod:`.memory`)."""

    name, switch, phase, attribute = "memory", "memory", "fused", "memory"

    def module(self, cfg: MMSAConfig, encoder_dims: Mapping[str, int]) -> nn.Module:
        return MemoryBank(
            cfg.num_anchors,
            cfg.embed_dim,
            cfg.memory_temperature,
            cfg.memory_momentum,
            cfg.sinkhorn_epsilon,
            cfg.sinkhorn_iterations,
            cfg.memory_seed,
        )

    def compute(self, step: StepViews) -> Tensor:
        assert step.fusion is not None
        loss, _ = step.modules[self.name](step.fusion.fused)
        return loss


TERMS: tuple[LossTerm, ...] = (
    MaskingTerm(),
    DescriptorsTerm(),
    ContrastiveTerm(),
    ReconstructionTerm(),
    HypergraphTerm(),
    MemoryTerm(),
)
LOSS_TERMS: tuple[str, ...] = tuple(term.name for term in TERMS)
