"""Contrastive objectives shared by the MMSA heads.

:func:`info_nce` is the symmetric InfoNCE / NT-Xent loss used for cross-modal alignment (and by
the hypergraph head): row i of ``a`` and row i of ``b`` are two views of the same molecule and
every other row of the batch is a negative. Similarities are cosines divided by a temperature,
computed in float32 (also under autocast) and turned into a loss with ``cross_entropy``, whose
log-sum-exp is numerically stable. A boolean ``mask`` restricts the loss to rows where both
views exist (e.g. molecules whose conformer or image is missing are left out); with fewer than
two such rows there are no negatives and the loss is a zero that still carries a gradient, so
callers never need a special case.
"""

from __future__ import annotations

from collections.abc import Mapping
from itertools import combinations

import torch
import torch.nn.functional as F
from torch import Tensor


def zero_loss(*tensors: Tensor) -> Tensor:
    """A float32 scalar 0 connected to the graph of ``tensors`` (so ``backward`` works)."""
    total = None
    for t in tensors:
        term = t.float().sum() * 0.0
        total = term if total is None else total + term
    if total is None:
        raise ValueError("zero_loss needs at least one tensor")
    return total


def info_nce(a: Tensor, b: Tensor, temperature: float = 0.1, mask: Tensor | None = None) -> Tensor:
    """Symmetric InfoNCE between paired embeddings ``a`` and ``b`` of shape (N, D).

    ``loss = (CE(S, I) + CE(S^T, I)) / 2`` with ``S_ij = cos(a_i, b_j) / temperature`` over the
    rows selected by ``mask`` (all rows when None).
    """
    if a.shape != b.shape or a.dim() != 2:
        raise ValueError(f"info_nce needs two (N, D) tensors of one shape: {a.shape}, {b.shape}")
    if temperature <= 0:
        raise ValueError("temperature must be positive")
    if mask is not None:
        mask = mask.bool().view(-1)
        a_sel, b_sel = a[mask], b[mask]
    else:
        a_sel, b_sel = a, b
    if a_sel.size(0) < 2:
        return zero_loss(a, b)
    with torch.autocast(device_type=a.device.type, enabled=False):
        za = F.normalize(a_sel.float(), dim=-1)
        zb = F.normalize(b_sel.float(), dim=-1)
        logits = za @ zb.t() / temperature
        target = torch.arange(logits.size(0), device=logits.device)
        return 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.t(), target))


def pair_name(first: str, second: str) -> str:
    """Key of a modality pair in :func:`pairwise_info_nce`'s result, e.g. "graph-image"."""
    return f"{first}-{second}"


def pairwise_info_nce(
    embeddings: Mapping[str, Tensor],
    masks: Mapping[str, Tensor | None] | None = None,
    temperature: float = 0.1,
) -> dict[str, Tensor]:
    """InfoNCE for every unordered pair of modalities (in the mapping's order).

    A pair uses the rows where both modalities are present (``masks[m]`` None = all present).
    """
    masks = masks or {}
    out: dict[str, Tensor] = {}
    for first, second in combinations(list(embeddings), 2):
        m1, m2 = masks.get(first), masks.get(second)
        if m1 is None:
            mask = m2
        elif m2 is None:
            mask = m1
        else:
            mask = m1.bool() & m2.bool()
        out[pair_name(first, second)] = info_nce(embeddings[first], embeddings[second], temperature, mask)
    return out
