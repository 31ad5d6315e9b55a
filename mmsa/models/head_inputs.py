"""What a finetuned model's head is built from: one seed's training molecules.

A head (:mod:`mmsa.models.heads`) is built once per seed, from that seed's training part only, so
that no validation or test molecule shapes it. Finetuning fills in what the compared model reads
(:attr:`mmsa.plan.compared_models.ComparedModel.reads`); the rest stays None.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from torch import Tensor


@dataclass(frozen=True)
class HeadInputs:
    """A seed's training molecules, rows in one order."""

    keys: list[str]  # canonical keys
    labels: np.ndarray  # (n, tasks), NaN = missing; regression targets standardized as training does
    fused: np.ndarray | None = None  # their pretrained fused embeddings (n, d)
    incidence: Tensor | None = None  # their kNN hypergraph as PyG incidence (2, nnz) over positions
    anchors: Tensor | None = None  # the pretrained memory anchors (M, d)
    neighbours: int | None = None  # finetune.neighbours: training neighbours per new molecule
