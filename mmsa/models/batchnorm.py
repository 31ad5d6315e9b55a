"""Batch normalization over the global batch when each rank holds a slice of it.

With per-rank statistics, a 2-rank run normalizes each half of the batch by its own mean and
variance, so it trains a different model than one process with the whole batch. PyTorch's
``SyncBatchNorm`` fixes that on GPUs only; :class:`GlobalBatchNorm` does it on any device with
two differentiable sums over the ranks (the mean, then the variance around it: the two-pass
form, no cancellation). Outside a process group, and in evaluation mode, it is the ordinary
batch norm. Its parameters and buffers have the names of ``BatchNorm1d/2d``, so state dicts
load both ways.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from mmsa.runtime.distributed import in_group, sum_over_ranks


class GlobalBatchNorm(nn.modules.batchnorm._BatchNorm):
    """``BatchNorm1d``/``2d`` whose training statistics cover every rank's rows."""

    def _check_input_dim(self, input: Tensor) -> None:
        if input.dim() < 2:
            raise ValueError(f"expected at least 2D input, got {input.dim()}D")

    def forward(self, x: Tensor) -> Tensor:
        if not (self.training and in_group()):
            return super().forward(x)
        dims = [0, *range(2, x.dim())]
        shape = [1, -1] + [1] * (x.dim() - 2)
        count = x.new_tensor(float(x.numel() // x.size(1)), dtype=torch.float32)
        sums = sum_over_ranks(torch.cat([x.float().sum(dims), count.view(1)]))
        n = sums[-1].detach()  # a row count: no gradient
        if float(n) == 0:  # no rows on any rank (e.g. no image in the global batch): nothing to learn
            return x
        mean = sums[:-1] / n
        var = sum_over_ranks(((x.float() - mean.view(shape)) ** 2).sum(dims)) / n
        if self.track_running_stats and self.running_mean is not None and self.running_var is not None:
            with torch.no_grad():
                self.num_batches_tracked.add_(1)
                tracked = float(self.num_batches_tracked)
                momentum = self.momentum if self.momentum is not None else 1.0 / tracked
                unbiased = var * n / (n - 1) if float(n) > 1 else var
                self.running_mean.lerp_(mean.to(self.running_mean.dtype), momentum)
                self.running_var.lerp_(unbiased.to(self.running_var.dtype), momentum)
        y = (x.float() - mean.view(shape)) * torch.rsqrt(var.view(shape) + self.eps)
        if self.affine:
            y = y * self.weight.view(shape) + self.bias.view(shape)
        return y.to(x.dtype)


def global_batchnorm(module: nn.Module) -> nn.Module:
    """``module`` with every ``BatchNorm1d``/``2d`` replaced by a :class:`GlobalBatchNorm`
    holding the same parameters and statistics (in place; returns ``module``)."""
    for name, child in module.named_children():
        if isinstance(child, (nn.BatchNorm1d, nn.BatchNorm2d)):
            replacement = GlobalBatchNorm(
                child.num_features, child.eps, child.momentum, child.affine, child.track_running_stats
            ).to(next(child.buffers(), torch.empty(0)).device)
            replacement.load_state_dict(child.state_dict())
            setattr(module, name, replacement)
        else:
            global_batchnorm(child)
    return module
