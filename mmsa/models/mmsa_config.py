"""The sizes, switches and loss weights of the MMSA pretraining model, as one frozen value.

Kept apart from the network (:mod:`mmsa.models.mmsa`) because the pretrained file, the config
check of given weights and the finetuning stage read it without building a model.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from mmsa.features.graph import GRAPH_FEATURE_SETS
from mmsa.runtime.from_mapping import from_mapping

MODALITIES = ("graph", "image", "geometry")
GEO_ENCODERS = ("schnet", "comenet")


@dataclass(frozen=True)
class MMSAConfig:
    """All sizes, switches and loss weights of :class:`~mmsa.models.mmsa.MMSAModel` (see its module)."""

    # inputs and modalities
    feature_set: str = "hu"
    use_graph: bool = True
    use_image: bool = True
    use_geometry: bool = True
    embed_dim: int = 256  # projection / fusion / anchor size
    # 2D graph encoder (GIN, Hu et al.)
    gnn_layers: int = 5
    gnn_dim: int = 300
    gnn_drop_ratio: float = 0.0
    gnn_jk: str = "last"
    gnn_pool: str = "mean"
    # image encoder (ResNet)
    image_layers: list[int] = field(default_factory=lambda: [2, 2, 2, 2])
    image_width: int = 64
    # 3D encoder: one of GEO_ENCODERS; geo_interactions counts SchNet interactions / ComENet layers
    geo_encoder: str = "schnet"
    geo_hidden: int = 128
    geo_filters: int = 128  # SchNet only
    geo_interactions: int = 4
    geo_gaussians: int = 50  # SchNet only
    geo_cutoff: float = 10.0
    geo_max_neighbors: int | None = 32
    geo_readout: str = "mean"
    # ComENet only, its published defaults
    geo_middle: int = 64
    geo_num_radial: int = 3
    geo_num_spherical: int = 2
    geo_output_layers: int = 3
    # graph-view augmentation in training (0 = off) and the masked-atom prediction term
    graph_mask_rate: float = 0.0
    graph_drop_bond_rate: float = 0.0
    # cross-modal contrastive alignment
    contrastive: bool = True
    contrastive_temperature: float = 0.1
    # fusion
    fusion_heads: int = 4
    fusion_layers: int = 1
    fusion_dropout: float = 0.1
    fusion_reconstruction: bool = True
    # hypergraph structure awareness
    hypergraph: bool = True
    hypergraph_k: int = 4  # neighbours per hyperedge, the centre not counted
    hypergraph_layers: int = 2
    hypergraph_dropout: float = 0.0
    hypergraph_temperature: float = 0.1
    hypergraph_anchor_nodes: bool = True  # memory anchors join as nodes (when memory is on)
    # memory bank
    memory: bool = True
    num_anchors: int = 64
    memory_momentum: float = 0.99
    memory_temperature: float = 0.1
    sinkhorn_epsilon: float = 0.05
    sinkhorn_iterations: int = 3
    memory_seed: int = 0
    # descriptor term (mmsa.models.descriptor_term): the GIN's pooled embedding predicts the
    # standardized RDKit descriptors, on a random descriptor_rate of them per step; off = the paper
    descriptors: bool = False
    descriptor_rate: float = 0.15
    descriptor_clip: float = 6.0  # standardized targets are clipped at +- this many sigma
    # loss weights
    weight_contrastive: float = 1.0
    weight_reconstruction: float = 1.0
    weight_hypergraph: float = 0.5
    weight_memory: float = 0.5
    weight_masking: float = 1.0
    weight_descriptors: float = 1.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "image_layers", [int(n) for n in self.image_layers])  # YAML gives any ints
        if self.feature_set not in GRAPH_FEATURE_SETS:
            raise ValueError(f"feature_set must be one of {GRAPH_FEATURE_SETS}")
        if self.geo_encoder not in GEO_ENCODERS:
            raise ValueError(f"unknown geo_encoder {self.geo_encoder!r}; use one of {GEO_ENCODERS}")
        if not self.modalities:
            raise ValueError("enable at least one of use_graph, use_image, use_geometry")
        if self.embed_dim % self.fusion_heads:
            raise ValueError("embed_dim must be divisible by fusion_heads")
        if self.descriptors and not self.use_graph:
            raise ValueError("the descriptor term reads the GIN's embedding: it needs use_graph")

    @property
    def modalities(self) -> list[str]:
        """The enabled modalities, in the fixed order graph, image, geometry."""
        on = {"graph": self.use_graph, "image": self.use_image, "geometry": self.use_geometry}
        return [m for m in MODALITIES if on[m]]

    def weight(self, term: str) -> float:
        """Loss weight of ``term`` (one of :data:`mmsa.models.objective.LOSS_TERMS`)."""
        return float(getattr(self, f"weight_{term}"))

    @classmethod
    def from_dict(cls, values: Mapping[str, Any] | None) -> MMSAConfig:
        return from_mapping(cls, values)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
