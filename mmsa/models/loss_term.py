"""What a pretraining loss term is: a name, a switch, a weight, its module and its computation.

:class:`~mmsa.models.mmsa.MMSAModel` knows no term by name. It encodes the views, projects them,
fuses them, and hands each step's :class:`StepViews` to the terms of
:data:`mmsa.models.objective.TERMS` in order; each enabled term returns its loss, and the total is
their sum weighted by ``MMSAConfig.weight_<name>``. A term is one class there:

* ``name``: its entry in ``losses`` (and ``losses.csv``), and its weight's field,
  ``weight_<name>``, in :class:`~mmsa.models.mmsa_config.MMSAConfig`;
* ``switch``: the config field that turns it on (:meth:`LossTerm.on` reads it; a term may ask
  more of the config);
* ``phase``: where in the forward pass it computes. ``"local"`` terms read the encoders' outputs
  on this rank's slice of a global batch, with this rank's random numbers, before the views are
  gathered; ``"views"`` terms read the whole batch's projections, before the fusion; ``"fused"``
  terms read the fusion's output. A term's module is built at the same point of the model, so
  the order of parameters (and of their random initial values) follows the terms';
* ``attribute``: the model attribute holding its module (None when the term is off), kept
  stable so that saved models load;
* :meth:`LossTerm.module` builds that module, :meth:`LossTerm.compute` the loss (None: nothing
  to learn from in this step, e.g. masking outside training).

A new term is such a class in :mod:`mmsa.models.objective` and its two config fields
(``docs/extending.md``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

import torch
from torch import Tensor, nn

from mmsa.models.augment import GraphView
from mmsa.models.fusion import FusionOutput
from mmsa.models.mmsa_config import MMSAConfig
from mmsa.runtime.distributed import GlobalBatch

Phase = Literal["local", "views", "fused"]
PHASES: tuple[Phase, ...] = ("local", "views", "fused")


@dataclass
class StepViews:
    """What the terms of one forward pass read, filled in as it goes (phase by phase; a term may
    add what later terms read)."""

    config: MMSAConfig
    modules: Mapping[str, nn.Module]  # each enabled term's module, by term name
    batch: Any
    global_batch: GlobalBatch | None
    augmented: bool  # the graph view was augmented (training with masking or bond dropping)
    feats: dict[str, Tensor] = field(default_factory=dict)  # encoder outputs (this rank's molecules)
    masks: dict[str, Tensor | None] = field(default_factory=dict)  # presence of views (None = all)
    graph_view: GraphView | None = None  # the graph the GIN read
    nodes: Tensor | None = None  # its node states
    proj: dict[str, Tensor] = field(default_factory=dict)  # projections (the global batch's, later)
    fusion: FusionOutput | None = None
    structure: Tensor | None = None  # the hypergraph's structure-aware embeddings
    pairs: dict[str, Tensor] = field(default_factory=dict)  # contrastive loss per view pair, detached


class LossTerm:
    """One term of the pretraining objective (see the module docstring)."""

    name: ClassVar[str]
    switch: ClassVar[str]
    phase: ClassVar[Phase]
    attribute: ClassVar[str | None] = None

    def on(self, cfg: MMSAConfig) -> bool:
        """Whether ``cfg`` turns the term on."""
        return bool(getattr(cfg, self.switch))

    def module(self, cfg: MMSAConfig, encoder_dims: Mapping[str, int]) -> nn.Module | None:
        """The term's module (``encoder_dims``: each modality encoder's output size), or None."""
        return None

    def compute(self, step: StepViews) -> Tensor | None:
        """The term's loss on this step (a scalar), or None when it has nothing to learn from."""
        raise NotImplementedError


def mean_over(sums: tuple[Tensor, Tensor], global_batch: GlobalBatch | None) -> Tensor:
    """A summed loss over its count (at least 1): this batch's, or the global batch's, as one
    process would take it."""
    total, count = sums
    if global_batch is not None:
        total, count = global_batch.total(torch.stack([total, count]))
    return total / count.clamp(min=1.0)
