"""Image encoder: a ResNet (He et al. 2016) of BasicBlocks written in plain torch.

MMSA encodes the rendered 2D depiction of a molecule with a ResNet-18-style CNN. torchvision is
not a dependency, so the network is defined here: ``layers`` gives the number of blocks per
stage ([2, 2, 2, 2] is ResNet-18, [3, 4, 6, 3] ResNet-34) and ``width`` the channels of the first
stage (64 in ResNet-18; 8 or 16 keeps CPU tests fast). Global average pooling makes the network
accept any input size. uint8 images are scaled to [0, 1] and normalized with the ImageNet
statistics, so raw depictions from the feature cache can be fed directly.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class BasicBlock(nn.Module):
    """Two 3x3 convolutions with a residual connection (projected when the shape changes)."""

    expansion = 1

    def __init__(self, in_channels: int, channels: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, channels, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)
        self.relu = nn.ReLU(inplace=True)
        self.downsample: nn.Module | None = None
        if stride != 1 or in_channels != channels:
            self.downsample = nn.Sequential(
                nn.Conv2d(in_channels, channels, 1, stride=stride, bias=False),
                nn.BatchNorm2d(channels),
            )

    def forward(self, x: Tensor) -> Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class ResNetEncoder(nn.Module):
    """ResNet trunk (stem, four stages, global average pool) returning ``out_dim`` features.

    Args:
        layers: blocks per stage; the stage channels are ``width * (1, 2, 4, 8)``.
        width: channels of the first stage.
        in_channels: image channels (3 for RGB depictions).
        normalize: normalize inputs with the ImageNet mean and standard deviation.
    """

    def __init__(
        self,
        layers: Sequence[int] = (2, 2, 2, 2),
        width: int = 64,
        in_channels: int = 3,
        normalize: bool = True,
    ) -> None:
        super().__init__()
        if len(layers) == 0 or any(n < 1 for n in layers):
            raise ValueError(f"layers must be a non-empty list of positive ints, got {layers}")
        self.normalize = normalize
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, width, 7, stride=2, padding=3, bias=False),
            nn.BatchNorm2d(width),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(3, stride=2, padding=1),
        )
        stages = []
        channels = width
        for i, n_blocks in enumerate(layers):
            out_channels = width * 2**i
            stride = 1 if i == 0 else 2
            blocks = [BasicBlock(channels, out_channels, stride)]
            blocks += [BasicBlock(out_channels, out_channels) for _ in range(n_blocks - 1)]
            stages.append(nn.Sequential(*blocks))
            channels = out_channels
        self.stages = nn.Sequential(*stages)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.out_dim = channels
        self._init_weights()

    def _init_weights(self) -> None:
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        # Zero-init the last BN of each block so every block starts as the identity.
        for m in self.modules():
            if isinstance(m, BasicBlock):
                nn.init.zeros_(m.bn2.weight)

    def prepare(self, images: Tensor) -> Tensor:
        """uint8 images -> float in [0, 1] (float images must already be in [0, 1]); then
        ImageNet normalization if enabled."""
        x = images.float() / 255.0 if images.dtype == torch.uint8 else images.float()
        if self.normalize and x.size(1) == 3:
            x = (x - self.mean) / self.std
        return x

    def forward(self, images: Tensor) -> Tensor:
        """Images (B, C, H, W), uint8 or float -> features (B, out_dim)."""
        x = self.stages(self.stem(self.prepare(images)))
        return self.pool(x).flatten(1)
