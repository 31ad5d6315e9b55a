"""Projection heads and the fusion of the modality embeddings into one molecule embedding.

Design (MMSA's "collaborative processing" of the views):

1. **Projection heads.** Each encoder's output (image CNN, GIN, 3D encoder; different sizes) goes
   through its own 2-layer MLP into a shared ``dim``-dimensional space. The cross-modal
   contrastive loss is applied to these projections (as in CLIP / SimCLR, so the encoders keep
   their own representation geometry).
2. **Attention fusion.** The projections become one token per modality (plus a learned
   modality-type embedding) behind a learned fusion token, as in a ViT ``[CLS]`` token. A small
   pre-norm Transformer encoder lets the modalities attend to each other and the fusion token
   read them; the fused embedding is the (layer-normed) output at the fusion token. Missing
   views (failed conformer, failed depiction, or a modality switched off) are removed with the
   attention key-padding mask, so they get exactly zero weight; the fusion token itself is never
   masked, so a molecule with no usable view still gets a finite embedding.
3. **Reconstruction decoder.** One MLP per modality maps the fused embedding back to that
   modality's projection; the loss is the cosine distance ``1 - cos(decoded, projection)``
   averaged over the present views, with the projection detached (a stop-gradient target, as in
   BYOL/SimSiam, so the loss cannot be lowered by moving the targets). It forces the single
   fused vector to keep the information of every view rather than only what is shared.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mmsa.models.losses import zero_loss


class ProjectionHead(nn.Module):
    """``Linear -> ReLU -> Linear`` into the shared embedding space (no batch norm, so masked
    rows and tiny batches are harmless)."""

    def __init__(self, in_dim: int, out_dim: int, hidden_dim: int | None = None) -> None:
        super().__init__()
        hidden_dim = hidden_dim or out_dim
        self.net = nn.Sequential(nn.Linear(in_dim, hidden_dim), nn.ReLU(), nn.Linear(hidden_dim, out_dim))
        self.out_dim = out_dim

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


@dataclass
class FusionOutput:
    """Fused embedding (B, dim) and, when enabled, each modality's reconstruction (B, dim)."""

    fused: Tensor
    reconstructions: dict[str, Tensor] = field(default_factory=dict)


class AttentionFusion(nn.Module):
    """Fusion token + Transformer over the present modality tokens (see the module docstring).

    Args:
        dim: size of the tokens and of the fused embedding (divisible by ``num_heads``).
        modalities: names of the modality tokens, in a fixed order.
        num_heads, num_layers, dropout: Transformer encoder settings.
        reconstruction: build the per-modality decoders.
    """

    def __init__(
        self,
        dim: int,
        modalities: Sequence[str],
        num_heads: int = 4,
        num_layers: int = 1,
        dropout: float = 0.1,
        reconstruction: bool = True,
    ) -> None:
        super().__init__()
        if not modalities:
            raise ValueError("AttentionFusion needs at least one modality")
        if dim % num_heads:
            raise ValueError(f"fusion dim {dim} is not divisible by num_heads {num_heads}")
        self.modalities = list(modalities)
        self.dim = dim
        self.fusion_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.type_embedding = nn.Parameter(torch.zeros(len(self.modalities), dim))
        nn.init.trunc_normal_(self.fusion_token, std=0.02)
        nn.init.trunc_normal_(self.type_embedding, std=0.02)
        layer = nn.TransformerEncoderLayer(
            d_model=dim,
            nhead=num_heads,
            dim_feedforward=2 * dim,
            dropout=dropout,
            batch_first=True,
            norm_first=True,
        )
        self.encoder = nn.TransformerEncoder(layer, num_layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(dim)
        self.decoders = nn.ModuleDict()
        if reconstruction:
            for name in self.modalities:
                self.decoders[name] = nn.Sequential(nn.Linear(dim, dim), nn.ReLU(), nn.Linear(dim, dim))

    def forward(
        self, tokens: Mapping[str, Tensor], masks: Mapping[str, Tensor | None] | None = None
    ) -> FusionOutput:
        """``tokens[m]`` (B, dim) for every modality; ``masks[m]`` (B,) True where present."""
        masks = masks or {}
        missing = [m for m in self.modalities if m not in tokens]
        if missing:
            raise KeyError(f"fusion is missing tokens for {missing}")
        first = tokens[self.modalities[0]]
        batch = first.size(0)
        seq = torch.stack([tokens[m] for m in self.modalities], dim=1) + self.type_embedding
        seq = torch.cat([self.fusion_token.expand(batch, -1, -1).to(seq.dtype), seq], dim=1)
        present = [torch.ones(batch, dtype=torch.bool, device=first.device)]
        for m in self.modalities:
            mask = masks.get(m)
            present.append(torch.ones_like(present[0]) if mask is None else mask.bool().view(-1))
        padding = ~torch.stack(present, dim=1)  # True = ignore this token
        hidden = self.encoder(seq, src_key_padding_mask=padding)
        fused = self.norm(hidden[:, 0])
        recon = {m: dec(fused) for m, dec in self.decoders.items()}
        return FusionOutput(fused, recon)


def reconstruction_loss(
    reconstructions: Mapping[str, Tensor],
    targets: Mapping[str, Tensor],
    masks: Mapping[str, Tensor | None] | None = None,
) -> Tensor:
    """Mean over modalities of the masked mean of ``1 - cos(reconstruction, target.detach())``.

    Modalities with no present row are skipped; with none at all the result is a zero that
    carries a gradient.
    """
    masks = masks or {}
    terms = []
    for name, recon in reconstructions.items():
        target = targets[name].detach()
        mask = masks.get(name)
        dist = 1.0 - F.cosine_similarity(recon.float(), target.float(), dim=-1)
        if mask is not None:
            mask = mask.bool().view(-1)
            if not bool(mask.any()):
                continue
            dist = dist[mask]
        terms.append(dist.mean())
    if not terms:
        return zero_loss(*reconstructions.values())
    return torch.stack(terms).mean()
