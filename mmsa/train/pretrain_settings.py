"""What a pretraining run is asked to do (``pretrain.settings``) and what it reports back."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from mmsa.runtime.from_mapping import from_mapping


@dataclass(frozen=True)
class PretrainSettings:
    """Trainer settings (``pretrain.settings`` in the config); ``model`` feeds MMSAConfig."""

    epochs: int = 5
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 1e-5
    warmup_fraction: float = 0.05
    grad_clip: float = 1.0
    amp: bool = True
    amp_on_cpu: bool = False
    loader_workers: int = 0
    shuffle_window: int = 8
    device: str = "auto"
    resume: bool = True
    model: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, cfg: Mapping[str, Any] | None) -> PretrainSettings:
        return from_mapping(cls, cfg, model=dict)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass
class PretrainResult:
    """What a finished run reports (also written as ``throughput.json``)."""

    epochs: int
    steps: int
    molecules: int
    wall_seconds: float
    molecules_per_second: float
    data_fraction: float
    device: str
    final_loss: float
    peak_gpu_mb: float | None = None  # torch's peak allocated CUDA memory (None on the CPU)
    provenance: dict[str, Any] = field(default_factory=dict)
