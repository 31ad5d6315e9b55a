"""The MMSA pretraining model: three encoders, cross-modal alignment, fusion, structure awareness.

``MMSAModel.forward(batch)`` takes a PyG ``Batch`` of molecules (graph features, conformer
coordinates with ``conf_mask``, depictions with ``img_mask``) and

1. encodes each enabled view: GIN on the 2D graph (:mod:`.graph`), a ResNet on the image
   (:mod:`.image`), SchNet (:mod:`.geometry`) or ComENet (:mod:`.comenet`) on the conformer;
   views that failed are masked;
2. projects them into one space and aligns every pair of views with symmetric InfoNCE
   (term ``contrastive``, the mean over pairs; absent with fewer than two modalities);
3. fuses the views into one embedding with attention, and reconstructs each view's projection
   from it (term ``reconstruction``) (:mod:`.fusion`);
4. builds a kNN hypergraph over the batch's fused embeddings (plus, optionally, the memory
   anchors as extra nodes), convolves it into structure-aware embeddings and aligns them with
   the fused ones (term ``hypergraph``) (:mod:`.hypergraph`);
5. aligns the fused embeddings with the memory bank's anchors and, in training, moves the
   anchors by momentum (term ``memory``) (:mod:`.memory`);
6. optionally augments the graph view in training (atom masking, bond dropping) and predicts
   the masked atom types from the GIN's node states (term ``masking``) (:mod:`.augment`);
7. optionally predicts the molecule's standardized RDKit descriptors from the GIN's pooled
   embedding, on a random share of them per step (term ``descriptors``) (:mod:`.descriptor_term`).

Every switch that is off removes its module and its entry in ``losses``; ``loss`` is the
weighted sum of the entries present. The GIN is exposed as ``graph_encoder`` so that
finetuning can reuse it on its own. Default sizes follow the usual baselines (GIN 5 x 300 as
in Hu et al., ResNet-18, a 4-block SchNet); the loss weights are this implementation's choice.
SchNet is the default 3D encoder (the lighter one on a CPU); ``geo_encoder: comenet`` selects
ComENet, the 3D encoder of the MMSA paper. The sizes live in :class:`~mmsa.models.mmsa_config.MMSAConfig`,
the saved file in :mod:`mmsa.models.pretrained_file`.
"""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import nullcontext
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mmsa.features.descriptors import DESCRIPTOR_NAMES
from mmsa.features.graph import ATOM_TYPE_UNKNOWN
from mmsa.models.augment import GraphView, augment_graph
from mmsa.models.comenet import ComENetEncoder
from mmsa.models.descriptor_term import DescriptorTerm
from mmsa.models.fusion import AttentionFusion, ProjectionHead, reconstruction_loss
from mmsa.models.geometry import ConformerEncoder, SchNetEncoder, atomic_numbers
from mmsa.models.graph import GINEncoder
from mmsa.models.hypergraph import HypergraphEncoder, hypergraph_loss
from mmsa.models.image import ResNetEncoder
from mmsa.models.losses import pairwise_info_nce, zero_loss
from mmsa.models.memory import MemoryBank
from mmsa.models.mmsa_config import MMSAConfig
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
        self.atom_head: nn.Linear | None = None
        if self.graph_encoder is not None and cfg.graph_mask_rate > 0:
            # predicts the atom type (atomic number - 1, or unknown) of masked atoms
            self.atom_head = nn.Linear(self.graph_encoder.out_dim, ATOM_TYPE_UNKNOWN + 1)
        self.descriptor_term: DescriptorTerm | None = None
        if self.graph_encoder is not None and cfg.descriptors:
            self.descriptor_term = DescriptorTerm(
                self.graph_encoder.out_dim, len(DESCRIPTOR_NAMES), cfg.descriptor_rate, cfg.descriptor_clip
            )
        self.projections = nn.ModuleDict(
            {m: ProjectionHead(self._encoder(m).out_dim, cfg.embed_dim) for m in self.modalities}
        )
        self.fusion = AttentionFusion(
            cfg.embed_dim,
            self.modalities,
            cfg.fusion_heads,
            cfg.fusion_layers,
            cfg.fusion_dropout,
            reconstruction=cfg.fusion_reconstruction,
        )
        self.hypergraph: HypergraphEncoder | None = None
        if cfg.hypergraph:
            self.hypergraph = HypergraphEncoder(
                cfg.embed_dim, cfg.hypergraph_layers, cfg.hypergraph_k, cfg.hypergraph_dropout
            )
        self.memory: MemoryBank | None = None
        if cfg.memory:
            self.memory = MemoryBank(
                cfg.num_anchors,
                cfg.embed_dim,
                cfg.memory_temperature,
                cfg.memory_momentum,
                cfg.sinkhorn_epsilon,
                cfg.sinkhorn_iterations,
                cfg.memory_seed,
            )

    def _encoder(self, modality: str) -> nn.Module:
        encoder = getattr(self, f"{modality}_encoder")
        assert encoder is not None
        return encoder

    @property
    def embed_dim(self) -> int:
        return self.config.embed_dim

    def encode(
        self, batch: Any, augment: bool = False, global_batch: GlobalBatch | None = None
    ) -> tuple[dict[str, Tensor], dict[str, Tensor | None], Tensor | None]:
        """Raw per-modality embeddings (B, encoder dim), presence masks (None = all), and the
        masked-atom loss when ``augment`` and atom masking are on (else None).

        With ``global_batch`` (this rank's slice of a global batch) the embeddings stay per rank, the
        masked-atom loss is the mean over the global batch's masked atoms, and the image encoder
        runs even without a local image, because its batch norms sum over the ranks."""
        num_graphs = int(getattr(batch, "num_graphs", 1))
        atom_batch = getattr(batch, "batch", None)
        if atom_batch is None:
            atom_batch = torch.zeros(batch.x.size(0), dtype=torch.long, device=batch.x.device)
        feats: dict[str, Tensor] = {}
        masks: dict[str, Tensor | None] = {}
        masking = None
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
            nodes, feats["graph"] = self.graph_encoder(
                view.x, view.edge_index, view.edge_attr, atom_batch, num_graphs
            )
            masks["graph"] = None
            if augment and self.atom_head is not None:
                masking = self._masking_loss(nodes, view.masked, batch.x[:, 0], global_batch)
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
        return feats, masks, masking

    def _masking_loss(
        self, nodes: Tensor, masked: Tensor, atom_types: Tensor, global_batch: GlobalBatch | None = None
    ) -> Tensor:
        """Cross-entropy of the masked atoms' types predicted from their GIN node states (the
        mean over the global batch's masked atoms with ``global_batch``, as one process would take it)."""
        assert self.atom_head is not None
        if bool(masked.any()):
            logits = self.atom_head(nodes[masked]).float()
            targets = atom_types[masked].long().clamp(max=ATOM_TYPE_UNKNOWN)
            loss = F.cross_entropy(logits, targets, reduction="mean" if global_batch is None else "sum")
        else:
            loss = zero_loss(nodes, self.atom_head.weight)
        if global_batch is None:
            return loss
        totals = global_batch.total(torch.stack([loss, masked.sum().float()]))
        return totals[0] / totals[1].clamp(min=1.0)

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
            feats, masks, masking = self.encode(batch, augment, global_batch)
            proj = {m: self.projections[m](feats[m]) for m in self.modalities}
            if self.descriptor_term is not None:  # its random targets are this rank's
                descriptor_sums = self.descriptor_term.sums(feats["graph"], batch.descriptors)
        if global_batch is not None:
            proj, masks = gather_views(global_batch, proj, masks)
        losses: dict[str, Tensor] = {}
        if masking is not None:
            losses["masking"] = masking
        if self.descriptor_term is not None:
            losses["descriptors"] = mean_over(descriptor_sums, global_batch)
        pairs: dict[str, Tensor] = {}
        if cfg.contrastive and len(self.modalities) >= 2:
            pair_losses = pairwise_info_nce(proj, masks, cfg.contrastive_temperature)
            losses["contrastive"] = torch.stack(list(pair_losses.values())).mean()
            pairs = {k: v.detach() for k, v in pair_losses.items()}
        fusion = self.fusion(proj, masks)
        fused = fusion.fused
        if cfg.fusion_reconstruction:
            losses["reconstruction"] = reconstruction_loss(fusion.reconstructions, proj, masks)
        structure = fused
        if self.hypergraph is not None:
            anchors = None
            if self.memory is not None and cfg.hypergraph_anchor_nodes:
                anchors = self.memory.anchors
            structure = self.hypergraph(fused, anchors)
            losses["hypergraph"] = hypergraph_loss(structure, fused, cfg.hypergraph_temperature)
        if self.memory is not None:
            losses["memory"], _ = self.memory(fused)  # momentum update happens in training
        if losses:
            loss = sum(cfg.weight(name) * value.float() for name, value in losses.items())
        else:
            loss = zero_loss(fused)
        return {
            "embedding": fused,
            "structure_embedding": structure,
            "graph_embedding": feats.get("graph"),
            "projections": proj,
            "masks": masks,
            "losses": losses,
            "contrastive_pairs": pairs,
            "loss": loss,
        }

    @torch.no_grad()
    def embed(self, batch: Any) -> tuple[Tensor, Tensor | None]:
        """Fused embedding (B, embed_dim) and GIN graph embedding (or None), without losses,
        gradients or memory updates."""
        feats, masks, _ = self.encode(batch)
        proj = {m: self.projections[m](feats[m]) for m in self.modalities}
        return self.fusion(proj, masks).fused, feats.get("graph")


def mean_over(sums: tuple[Tensor, Tensor], global_batch: GlobalBatch | None) -> Tensor:
    """A summed loss over its count (at least 1): this batch's, or the global batch's, as one
    process would take it."""
    total, count = sums
    if global_batch is not None:
        total, count = global_batch.total(torch.stack([total, count]))
    return total / count.clamp(min=1.0)


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
