"""The learning-rate schedule of pretraining: linear warm-up, then cosine decay."""

from __future__ import annotations

import math


def warmup_cosine(total_steps: int, warmup_steps: int, floor: float = 0.0):
    """LR multiplier: linear warm-up to 1, then cosine decay to ``floor`` at ``total_steps``."""

    def factor(step: int) -> float:
        if warmup_steps and step < warmup_steps:
            return (step + 1) / warmup_steps
        progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
        return floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * progress))

    return factor
