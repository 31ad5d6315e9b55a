"""The heads a finetuned GIN can carry beside its embedding, by name: the one table that
finetuning (which head to build), saving and loading (which metadata) consult.

What each head reads and which settings it takes is declared in the planning layer
(:data:`mmsa.plan.compared_models.HEADS`, torch-free for the Snakefile); its network is here,
registered under the same name. A head is a ``torch.nn.Module`` following :class:`Head`. The
plain linear head (``"linear"``) has no module.
"""

from __future__ import annotations

from typing import Any, ClassVar, Protocol

import numpy as np
import torch
from torch import Tensor

from mmsa.models.head_inputs import HeadInputs
from mmsa.models.neighbour_labels import NeighbourLabels
from mmsa.models.structure_context import StructureContext
from mmsa.plan.finetune_settings import FinetuneSettings


class Head(Protocol):
    """What finetuning, saving, loading and ``mmsa predict`` ask of a head."""

    name: ClassVar[str]  # its entry in mmsa.plan.compared_models.HEADS
    meta_key: ClassVar[str]  # its key in a saved model's metadata
    out_dim: int  # the width of its context, joined to the GIN's embedding

    @property
    def reads_fused(self) -> bool:
        """Whether a new molecule's context needs its pretrained fused embedding."""
        ...

    @classmethod
    def build(cls, inputs: HeadInputs, settings: FinetuneSettings) -> Head:
        """The head over a seed's training molecules."""
        ...

    def __call__(self, index: Tensor) -> Tensor:
        """The context of training molecules ``index`` (positions among them)."""
        ...

    def new_context(
        self, fused: np.ndarray | None, keys: list[str] | None, device: torch.device | str
    ) -> Tensor:
        """The context of molecules outside the training set."""
        ...

    def saved_meta(self) -> dict[str, Any]:
        """What :meth:`from_saved` needs beside the model's state dict."""
        ...

    @classmethod
    def from_saved(cls, meta: dict[str, Any], state: dict[str, Tensor]) -> Head:
        """The head of a saved model, before its weights are loaded."""
        ...


HEAD_TYPES: dict[str, type[Head]] = {
    cls.name: cls
    for cls in (
        StructureContext,
        NeighbourLabels,
    )
}
