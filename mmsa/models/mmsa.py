"""The MMSA pretraining model: three encoders, cross-modal alignment, fusion, structure awareness.

``MMSAModel.forward(batch)`` takes a PyG ``Batch`` of molecules (graph features, conformer
coordinates with ``conf_mask``, depictions with ``img_mask``) and

1. encodes each enabled view: GIN on the 2D graph (:mod:`.gin`), a ResNet on the image
   (:mod:`.resnet`), SchNet (:mod:`.geometry`) or ComENet (:mod:`.comenet`) on the conformer;
   views that failed are masked;
2. projects them into one space and aligns every pair of views with symmetric InfoNCE
   (term ``contrastive``, the mean over pairs; absent with fewer than two modalities);
3. fuses the views into one embedding with attention, and reconstructs each view's projection
   from it (term ``reconstruction``) (:mod:`.fusion`);
4. builds a kNN hypergraph over the batch's fused embeddings (plus, optionally, the memory
   anchors as extra nodes), convolves it into structure-aware embeddings and aligns them with
   the fused ones (term ``hypergraph``) (:mod:`.knn_hypergraph`);
5. aligns the fused embeddings with the memory bank's anchors and, in training, moves the
   anchors by momentum (term ``memory``) (:mod:`.memory`);
6. optionally augments the graph view in training (atom masking, bond dropping) and predicts
   the masked atom types from the GIN's node states (term ``masking``) (:mod:`.augment`);
7. optionally predicts the molecule's standardized RDKit descriptors from the GIN's pooled
   embedding, on a random share of them per step (term ``descriptors``) (:mod:`.descriptor_term`).

Each term is one class (:mod:`.loss_term`), listed in order in :mod:`.objective`; the model
runs them and knows none by name. Every switch that is off removes its module and its entry in
``losses``; ``loss`` is the weighted sum of the entries present. The GIN is exposed as
``graph_encoder`` so that finetuning can reuse it on its own. Default sizes follow the usual
baselines (GIN 5 x 300 as in Hu et al., ResNet-18, a 4-block SchNet); the loss weights are this
implementation's choice.
SchNet is the default 3D encoder (the lighter one on a CPU); ``geo_encoder: comenet`` selects
ComENet, the 3D encoder of the MMSA paper. The sizes live in :class:`~mmsa.models.mmsa_config.MMSAConfig`,
the saved file in :mod:`mmsa.models.pretrained_file`.
"""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import nullcontext
from typing import Any

import torch
from torch import Tensor, nn

from mmsa.models.augment import GraphView, augment_graph
from mmsa.models.comenet import ComENetEncoder
from mmsa.models.descriptor_term import DescriptorTerm
from mmsa.models.fusion import AttentionFusion, ProjectionHead
from mmsa.models.geometry import ConformerEncoder, SchNetEncoder, atomic_numbers
from mmsa.models.gin import GINEncoder
from mmsa.models.knn_hypergraph import HypergraphEncoder
from mmsa.models.loss_term import Phase, StepViews
from mmsa.models.losses import zero_loss
from mmsa.models.memory import MemoryBank
from mmsa.models.mmsa_config import MMSAConfig
from mmsa.models.objective import TERMS
from mmsa.models.resnet import ResNetEncoder
from mmsa.runtime.distributed import GlobalBatch


def geometry_encoder(cfg: MMSAConfig) -> ConformerEncoder:
    """The 3D encoder that ``cfg.geo_encoder`` names, with the config's sizes."""
    if cfg.geo_encoder == "comenet":
        return ComENetEncoder(
            cfg.geo_hidden,
            cfg.geo_middle,
            cfg.geo_interactions,
            cfg.geo_num_radial,
            cfg.geo_num_spherical,
            cfg.geo_output_layers,
            cfg.geo_cutoff,
            cfg.geo_max_neighbors,
            cfg.geo_readout,
        )
    return SchNetEncoder(
        cfg.geo_hidden,
        cfg.geo_filters,
        cfg.geo_interactions,
        cfg.geo_gaussians,
        cfg.geo_cutoff,
        cfg.geo_max_neighbors,
        cfg.geo_readout,
    )


class MMSAModel(nn.Module):
    """Multi-modal pretraining model; see the module docstring for the pipeline and losses."""

    # the terms' modules (mmsa.models.objective), None where a term is off
    atom_head: nn.Linear | None
    descriptor_term: DescriptorTerm | None
    hypergraph: HypergraphEncoder | None
    memory: MemoryBank | None

    def __init__(self, config: MMSAConfig | Mapping[str, Any] | None = None) -> None:
        super().__init__()
        if not isinstance(config, MMSAConfig):
            config = MMSAConfig.from_dict(config)
        self.config = cfg = config
        self.modalities = cfg.modalities
        self.graph_encoder: GINEncoder | None = None
        self.image_encoder: ResNetEncoder | None = None
        self.geometry_encoder: ConformerEncoder | None = None
        if cfg.use_graph:
            self.graph_encoder = GINEncoder(
                cfg.feature_set,
                cfg.gnn_layers,
                cfg.gnn_dim,
                cfg.gnn_drop_ratio,
                cfg.gnn_jk,
                cfg.gnn_pool,
            )
        if cfg.use_image:
            self.image_encoder = ResNetEncoder(cfg.image_layers, cfg.image_width)
        if cfg.use_geometry:
            self.geometry_encoder = geometry_encoder(cfg)
        self.terms = [term for term in TERMS if term.on(cfg)]
        self._build_terms("local")
        self.projections = nn.ModuleDict(
            {m: ProjectionHead(self._encoder(m).out_dim, cfg.embed_dim) for m in self.modalities}
        )
        self._build_terms("views")
        self.fusion = AttentionFusion(
            cfg.embed_dim,
            self.modalities,
            cfg.fusion_heads,
            cfg.fusion_layers,
            cfg.fusion_dropout,
            reconstruction=cfg.fusion_reconstruction,
        )
        self._build_terms("fused")

    def _build_terms(self, phase: Phase) -> None:
        """The modules of the terms that compute at ``phase`` (None for a term that is off)."""
        dims = {m: self._encoder(m).out_dim for m in self.modalities}
        for term in TERMS:
            if term.phase == phase and term.attribute is not None:
                setattr(self, term.attribute, term.module(self.config, dims) if term in self.terms else None)

    def _losses(self, phase: Phase, step: StepViews) -> dict[str, Tensor]:
        """The losses of the enabled terms that compute at ``phase``, in the terms' order."""
        losses = {}
        for term in self.terms:
            if term.phase == phase and (value := term.compute(step)) is not None:
                losses[term.name] = value
        return losses

    def _encoder(self, modality: str) -> nn.Module:
        encoder = getattr(self, f"{modality}_encoder")
        assert encoder is not None
        return encoder

    @property
    def embed_dim(self) -> int:
        return self.config.embed_dim

    def encode(self, batch: Any, augment: bool = False, global_batch: GlobalBatch | None = None) -> StepViews:
        """Raw per-modality embeddings (B, encoder dim) and presence masks (None = all), with the
        graph view the GIN read (augmented when ``augment``) and its node states.

        With ``global_batch`` (this rank's slice of a global batch) the image encoder runs even
        without a local image, because its batch norms sum over the ranks."""
        num_graphs = int(getattr(batch, "num_graphs", 1))
        atom_batch = getattr(batch, "batch", None)
        if atom_batch is None:
            atom_batch = torch.zeros(batch.x.size(0), dtype=torch.long, device=batch.x.device)
        modules = {t.name: getattr(self, t.attribute) for t in self.terms if t.attribute is not None}
        step = StepViews(self.config, modules, batch, global_batch, augment)
        feats, masks = step.feats, step.masks
        if self.graph_encoder is not None:
            cfg = self.config
            if augment:
                view = augment_graph(
                    batch.x, batch.edge_index, batch.edge_attr, cfg.graph_mask_rate, cfg.graph_drop_bond_rate
                )
            else:
                view = GraphView(
                    batch.x, batch.edge_index, batch.edge_attr, batch.x.new_zeros(0, dtype=torch.bool)
                )
            step.graph_view = view
            step.nodes, feats["graph"] = self.graph_encoder(
                view.x, view.edge_index, view.edge_attr, atom_batch, num_graphs
            )
            masks["graph"] = None
        if self.image_encoder is not None:
            img_mask = batch.img_mask.bool().view(-1)
            feats["image"] = self._encode_images(batch.image, img_mask, always=global_batch is not None)
            masks["image"] = img_mask
        if self.geometry_encoder is not None:
            conf_mask = batch.conf_mask.bool().view(-1)
            feats["geometry"] = self.geometry_encoder(
                atomic_numbers(batch.x), batch.pos, atom_batch, conf_mask, num_graphs
            )
            masks["geometry"] = conf_mask
        return step

    def _encode_images(self, images: Tensor, mask: Tensor, always: bool = False) -> Tensor:
        """Runs the CNN on the present images only; absent ones get zeros. ``always`` runs it
        on no image too (so that every rank joins its batch norms' collectives)."""
        encoder = self.image_encoder
        assert encoder is not None
        out = torch.zeros(images.size(0), encoder.out_dim, device=images.device)
        if always or bool(mask.any()):
            feats = encoder(images[mask])
            out = out.to(feats.dtype).index_put((mask.nonzero(as_tuple=True)[0],), feats)
        return out

    def forward(self, batch: Any, global_batch: GlobalBatch | None = None) -> dict[str, Any]:
        """Embeddings and losses of a batch.

        With ``global_batch``, ``batch`` is this rank's slice of a global batch: the encoders and
        projections run on the slice (with per-rank random numbers), then the projections and
        masks of all ranks are gathered and everything after them (contrastive negatives,
        fusion, the hypergraph, the memory bank) runs on the global batch, identically on every
        rank. The outputs then cover the global batch, except ``graph_embedding`` (the slice).

        Returns a dict with ``embedding`` (fused, (B, embed_dim)), ``structure_embedding``
        (hypergraph output, or the fused embedding when the hypergraph is off),
        ``graph_embedding`` (GIN pooled output or None), ``projections`` (per modality),
        ``masks``, ``losses`` (term -> scalar, only enabled terms), ``contrastive_pairs``
        (detached per-pair values, for logging) and ``loss`` (weighted total).
        """
        cfg = self.config
        augment = self.training and (cfg.graph_mask_rate > 0 or cfg.graph_drop_bond_rate > 0)
        local = nullcontext() if global_batch is None else global_batch.local_randomness(batch.x.device)
        with local:
            step = self.encode(batch, augment, global_batch)
            step.proj = {m: self.projections[m](step.feats[m]) for m in self.modalities}
            losses = self._losses("local", step)  # their random numbers are this rank's
        if global_batch is not None:
            step.proj, step.masks = gather_views(global_batch, step.proj, step.masks)
        losses |= self._losses("views", step)
        step.fusion = self.fusion(step.proj, step.masks)
        fused = step.fusion.fused
        losses |= self._losses("fused", step)
        if losses:
            loss = sum(cfg.weight(name) * value.float() for name, value in losses.items())
        else:
            loss = zero_loss(fused)
        return {
            "embedding": fused,
            "structure_embedding": fused if step.structure is None else step.structure,
            "graph_embedding": step.feats.get("graph"),
            "projections": step.proj,
            "masks": step.masks,
            "losses": losses,
            "contrastive_pairs": step.pairs,
            "loss": loss,
        }

    @torch.no_grad()
    def embed(self, batch: Any) -> tuple[Tensor, Tensor | None]:
        """Fused embedding (B, embed_dim) and GIN graph embedding (or None), without losses,
        gradients or memory updates."""
        step = self.encode(batch)
        proj = {m: self.projections[m](step.feats[m]) for m in self.modalities}
        return self.fusion(proj, step.masks).fused, step.feats.get("graph")


def gather_views(
    global_batch: GlobalBatch, proj: dict[str, Tensor], masks: dict[str, Tensor | None]
) -> tuple[dict[str, Tensor], dict[str, Tensor | None]]:
    """The projections (with gradient) and presence masks of the whole global batch."""
    gathered = {m: global_batch.gather(p) for m, p in proj.items()}
    # gloo gathers no bool tensors: masks travel as bytes
    present = {
        m: None if v is None else global_batch.gather(v.to(torch.uint8)).bool() for m, v in masks.items()
    }
    return gathered, present
