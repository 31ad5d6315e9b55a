"""MMSA networks: per-view encoders, contrastive losses, fusion, hypergraph and memory bank.

:class:`MMSAModel` / :class:`MMSAConfig` assemble the pretraining model; :class:`GINEncoder` is
the 2D encoder reused for finetuning.
"""

from mmsa.models.comenet import ComENetEncoder
from mmsa.models.fusion import AttentionFusion, ProjectionHead, reconstruction_loss
from mmsa.models.geometry import ConformerEncoder, SchNetEncoder, atomic_numbers, radius_interaction_graph
from mmsa.models.gin import GINEncoder
from mmsa.models.knn_hypergraph import HypergraphEncoder, hypergraph_loss, knn_hyperedges
from mmsa.models.losses import info_nce, pairwise_info_nce
from mmsa.models.memory import MemoryBank, sinkhorn
from mmsa.models.mmsa import MMSAModel
from mmsa.models.mmsa_config import GEO_ENCODERS, MODALITIES, MMSAConfig
from mmsa.models.objective import LOSS_TERMS
from mmsa.models.resnet import ResNetEncoder

__all__ = [
    "GEO_ENCODERS",
    "LOSS_TERMS",
    "MODALITIES",
    "AttentionFusion",
    "ComENetEncoder",
    "ConformerEncoder",
    "GINEncoder",
    "HypergraphEncoder",
    "MMSAConfig",
    "MMSAModel",
    "MemoryBank",
    "ProjectionHead",
    "ResNetEncoder",
    "SchNetEncoder",
    "atomic_numbers",
    "hypergraph_loss",
    "info_nce",
    "knn_hyperedges",
    "pairwise_info_nce",
    "radius_interaction_graph",
    "reconstruction_loss",
    "sinkhorn",
]
