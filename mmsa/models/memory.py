"""Memory bank of anchors: "typical molecular representations" that embeddings align to.

The bank holds ``M`` unit-norm anchors as buffers (not trained by gradient). Each molecule is
softly assigned to the anchors, ``p = softmax(cos(z, anchors) / temperature)``, and the
alignment loss is the cross-entropy ``-sum_j q_j log p_j`` against a *balanced* target ``q``
computed with a few Sinkhorn-Knopp iterations on the detached similarities (as in SwAV, Caron et
al. 2020). The Sinkhorn targets spread every batch evenly over all anchors, so the trivial
solution "all molecules on one anchor" has high loss and the assignment cannot collapse.

After the loss is computed (and only in training), each anchor moves toward the molecules
assigned to it (hard assignment = argmax of the balanced target), with momentum ``m``::

    anchor_j <- normalize(m * anchor_j + (1 - m) * mean_{i: a(i) = j} normalize(z_i))

Anchors that received no molecule stay unchanged. The update runs under ``no_grad`` on a copy
so that autograd never sees a modified tensor. Initial anchors are random unit vectors drawn
from a generator seeded with ``seed``, so the bank is deterministic.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mmsa.models.losses import zero_loss


@torch.no_grad()
def sinkhorn(scores: Tensor, epsilon: float = 0.05, iterations: int = 3) -> Tensor:
    """Balanced soft assignment (B, M) of B samples to M anchors from similarity ``scores``.

    Rows of the result sum to 1; each column's sum tends to B / M as ``iterations`` grows.
    """
    q = scores.detach().float() / epsilon
    q = torch.exp(q - q.max()).t()  # (M, B)
    q = q / q.sum()
    m, b = q.shape
    for _ in range(iterations):
        q = q / q.sum(dim=1, keepdim=True) / m
        q = q / q.sum(dim=0, keepdim=True) / b
    return (q * b).t()


class MemoryBank(nn.Module):
    r"""Memory anchors: ``num_anchors`` unit-norm typical representations that every embedding is
    aligned to, with a SwAV-style loss (Caron et al. 2020) and a momentum update.

    For L2-normalized embeddings :math:`\mathbf{z}_i` and anchors :math:`\mathbf{a}_m`, the
    scores are :math:`s_{im} = \mathbf{z}_i^{\top}\mathbf{a}_m`, the targets :math:`q_{im}` the
    balanced Sinkhorn assignment of :math:`s` (:func:`sinkhorn`, no gradient), and

    .. math::
        \mathcal{L} = -\frac{1}{B} \sum_i \sum_m q_{im} \log
        \operatorname{softmax}_m(s_{im} / \tau),
        \qquad
        \mathbf{a}_m \leftarrow \frac{\mu \mathbf{a}_m + (1 - \mu) \bar{\mathbf{z}}_m}
        {\lVert \mu \mathbf{a}_m + (1 - \mu) \bar{\mathbf{z}}_m \rVert}

    where :math:`\bar{\mathbf{z}}_m` is the mean of the embeddings whose largest target is
    anchor :math:`m` (anchors that no embedding chose stay put). The update runs in training
    mode only.

    Args:
        num_anchors: number of anchors :math:`M` (at least 1).
        dim: embedding size.
        temperature: :math:`\tau` of the predicted assignment (default ``0.1``).
        momentum: :math:`\mu` in [0, 1] (default ``0.99``; 0 replaces an anchor by its batch
            mean, 1 freezes it).
        epsilon: Sinkhorn entropy regularisation (default ``0.05``).
        sinkhorn_iterations: Sinkhorn normalisation rounds (default ``3``).
        seed: seed of the initial anchors, drawn from a standard normal and normalized
            (default ``0``).

    Shapes:
        - **input:** embeddings :math:`(B, \text{dim})`
        - **output:** loss (scalar), targets :math:`(B, M)`
    """

    anchors: Tensor

    def __init__(
        self,
        num_anchors: int,
        dim: int,
        temperature: float = 0.1,
        momentum: float = 0.99,
        epsilon: float = 0.05,
        sinkhorn_iterations: int = 3,
        seed: int = 0,
    ) -> None:
        super().__init__()
        if num_anchors < 1:
            raise ValueError("the memory bank needs at least one anchor")
        if not 0.0 <= momentum <= 1.0:
            raise ValueError("momentum must lie in [0, 1]")
        self.temperature, self.momentum = temperature, momentum
        self.epsilon, self.sinkhorn_iterations = epsilon, sinkhorn_iterations
        generator = torch.Generator().manual_seed(seed)
        anchors = F.normalize(torch.randn(num_anchors, dim, generator=generator), dim=-1)
        self.register_buffer("anchors", anchors)

    @property
    def num_anchors(self) -> int:
        return self.anchors.size(0)

    def scores(self, embeddings: Tensor) -> Tensor:
        """Cosine similarity (B, M) of the embeddings to a snapshot of the anchors."""
        z = F.normalize(embeddings.float(), dim=-1)
        return z @ self.anchors.detach().clone().float().t()

    def soft_assignment(self, embeddings: Tensor) -> Tensor:
        """Predicted assignment ``softmax(cos / temperature)`` (B, M)."""
        return torch.softmax(self.scores(embeddings) / self.temperature, dim=-1)

    def targets(self, embeddings: Tensor) -> Tensor:
        """Balanced Sinkhorn targets (B, M) (no gradient)."""
        return sinkhorn(self.scores(embeddings), self.epsilon, self.sinkhorn_iterations)

    def alignment_loss(self, embeddings: Tensor) -> tuple[Tensor, Tensor]:
        """Cross-entropy between balanced targets and predicted assignment; returns (loss, q)."""
        if embeddings.size(0) == 0:
            return zero_loss(embeddings), embeddings.new_zeros(0, self.num_anchors)
        scores = self.scores(embeddings)
        q = sinkhorn(scores, self.epsilon, self.sinkhorn_iterations)
        log_p = F.log_softmax(scores / self.temperature, dim=-1)
        return -(q * log_p).sum(dim=-1).mean(), q

    @torch.no_grad()
    def update(self, embeddings: Tensor, assignments: Tensor) -> None:
        """Momentum update of the anchors from embeddings and their hard anchor ids (B,)."""
        if embeddings.size(0) == 0:
            return
        z = F.normalize(embeddings.detach().float(), dim=-1)
        assignments = assignments.long().view(-1)
        sums = torch.zeros_like(self.anchors, dtype=torch.float32).index_add_(0, assignments, z)
        counts = torch.bincount(assignments, minlength=self.num_anchors)
        used = counts > 0
        mean = sums[used] / counts[used].unsqueeze(1).float()
        new = self.anchors.detach().clone()
        moved = self.momentum * new[used].float() + (1.0 - self.momentum) * mean
        new[used] = F.normalize(moved, dim=-1).to(new.dtype)
        self.anchors.copy_(new)

    def forward(self, embeddings: Tensor) -> tuple[Tensor, Tensor]:
        """Alignment loss and targets; in training mode also the momentum update."""
        loss, q = self.alignment_loss(embeddings)
        if self.training and q.numel():
            self.update(embeddings, q.argmax(dim=-1))
        return loss, q
