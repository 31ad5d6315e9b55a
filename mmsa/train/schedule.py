"""Learning-rate schedule and device choice shared by pretraining and finetuning."""

from __future__ import annotations

import math

import torch


def warmup_cosine(total_steps: int, warmup_steps: int, floor: float = 0.0):
    """LR multiplier: linear warm-up to 1, then cosine decay to ``floor`` at ``total_steps``."""

    def factor(step: int) -> float:
        if warmup_steps and step < warmup_steps:
            return (step + 1) / warmup_steps
        progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
        return floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * progress))

    return factor


def pick_device(name: str = "auto") -> torch.device:
    """``auto`` = the first CUDA GPU when there is one, else the CPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)
