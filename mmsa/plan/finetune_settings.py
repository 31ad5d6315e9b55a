"""The finetuning settings (``finetune.settings``) and, for each, which compared models read it.

The planning layer hands each finetune job only the settings its model reads (so changing the
forest's trees reruns no GIN), and the finetuning code builds its settings object from the same
class: the list of names and the reader of each live here once, as field metadata.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any, Literal

from mmsa.runtime.from_mapping import from_mapping

Reader = Literal["neural", "split", "structure", "labels", "forest"]
"""Who reads a setting: every neural model, the split stage, the structure-aware head
(``mmsa``), the label-aware head (``mmsa-labels``), the random forests."""


def _setting(default: Any, read_by: Reader) -> Any:
    return field(default=default, metadata={"read_by": read_by})


@dataclass(frozen=True)
class FinetuneSettings:
    """Finetuning settings (``finetune.settings`` in the config; defaults and meanings in the
    schema). The defaults are Hu et al.'s protocol: 100 epochs, batch 32, Adam at 1e-3, dropout
    0.5 in the GIN."""

    epochs: int = _setting(100, "neural")
    batch_size: int = _setting(32, "neural")
    lr: float = _setting(1e-3, "neural")
    weight_decay: float = _setting(0.0, "neural")
    dropout: float = _setting(0.5, "neural")
    patience: int = _setting(0, "neural")
    descriptor_inputs: bool = _setting(False, "neural")
    descriptor_clip: float = _setting(6.0, "neural")
    freeze_epochs: int = _setting(0, "neural")
    encoder_lr: float = _setting(1.0, "neural")
    split: str = _setting("scaffold", "split")
    split_fractions: tuple[float, float, float] = _setting((0.8, 0.1, 0.1), "split")
    structure_dim: int = _setting(64, "structure")
    anchor_temperature: float = _setting(0.1, "structure")
    label_space: str = _setting("fused", "labels")
    rf_trees: int = _setting(500, "forest")
    device: str = _setting("auto", "neural")

    @classmethod
    def from_dict(cls, cfg: Mapping[str, Any] | None) -> FinetuneSettings:
        return from_mapping(cls, cfg, split_fractions=tuple)


def settings_read_by(reader: Reader) -> tuple[str, ...]:
    """The names of the settings ``reader`` reads, in the class's order."""
    return tuple(f.name for f in fields(FinetuneSettings) if f.metadata["read_by"] == reader)
