"""The training molecules a finetuned model keeps, so that ``mmsa predict`` can show a chemist the
known molecules each new one resembles.

A finetuned model file holds its seed's training molecules (:class:`TrainingReference`): their
keys (canonical SMILES), their labels and, for models that read the pretrained fused space
(``mmsa``, ``mmsa-labels``), their fused embeddings. :func:`nearest_training` finds each new
molecule's nearest training molecules, ranked in the fused space where the model has it (the space
its structure-aware head looks in) and by ECFP4 Tanimoto otherwise, and gives both similarities for
every neighbour: ECFP4 Tanimoto (radius 2, 2,048 bits, RDKit's Morgan generator, as the ``ecfp-rf``
baseline computes it) and the fused-space cosine.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

BLOCK = 2048  # query molecules per similarity block: BLOCK x n_train floats at a time
DOMAIN_COVERAGE = 0.8
"""Share of a seed's validation molecules inside the applicability domain its threshold draws.

The threshold is the (1 - coverage) quantile of the validation molecules' largest ECFP4 Tanimoto
similarity to the training molecules: a new molecule is out of domain when it lies further from
everything the model was trained on than the least similar fifth of the validation molecules did.
Under a scaffold split the validation molecules are themselves new scaffolds, so the threshold
measures "as new as the molecules the model was selected on", from validation only.
"""


@dataclass
class TrainingReference:
    """A finetuned model's training molecules: keys, labels (n, tasks; NaN where missing) and
    fused embeddings (n, d) when the model reads the fused space."""

    keys: list[str]
    labels: np.ndarray
    fused: np.ndarray | None = None

    def to_saved(self) -> dict[str, Any]:
        """Plain lists and tensors, as a weights-only model file holds them."""
        saved: dict[str, Any] = {
            "keys": list(self.keys),
            "labels": torch.as_tensor(self.labels, dtype=torch.float32),
        }
        if self.fused is not None:
            saved["fused"] = torch.as_tensor(self.fused, dtype=torch.float32)
        return saved

    @classmethod
    def from_saved(cls, saved: dict[str, Any]) -> TrainingReference:
        fused = saved.get("fused")
        return cls(list(saved["keys"]), saved["labels"].numpy(), None if fused is None else fused.numpy())


def merged(references: list[TrainingReference]) -> TrainingReference:
    """The training molecules of several seed models (their splits differ) as one reference, each
    molecule once, in order of first appearance; fused embeddings only if every seed has them."""
    first: dict[str, tuple[int, int]] = {}
    for r, reference in enumerate(references):
        for i, key in enumerate(reference.keys):
            first.setdefault(key, (r, i))
    width = references[0].labels.shape[1]
    labels = np.array([references[r].labels[i] for r, i in first.values()]).reshape(len(first), width)
    fused = None
    if all(reference.fused is not None for reference in references):
        dim = references[0].fused.shape[1]
        fused = np.array([references[r].fused[i] for r, i in first.values()]).reshape(len(first), dim)
    return TrainingReference(list(first), labels, fused)


def coverage_threshold(similarity: np.ndarray, coverage: float = DOMAIN_COVERAGE) -> float:
    """The (1 - ``coverage``) quantile of validation molecules' largest similarities to the
    training molecules: the applicability domain's threshold; 0 (every molecule inside) without
    validation molecules."""
    similarity = np.asarray(similarity, dtype=np.float64)
    return float(np.quantile(similarity, 1 - coverage)) if len(similarity) else 0.0


def max_training_tanimoto(training_keys: list[str], keys: list[str]) -> np.ndarray:
    """Each of ``keys``' largest ECFP4 Tanimoto similarity to any of ``training_keys``."""
    if not keys or not training_keys:
        return np.full(len(keys), np.nan)
    reference = TrainingReference(list(training_keys), np.zeros((len(training_keys), 0)))
    _, largest = nearest_training(reference, [], keys, None, 1)
    return largest["max_ecfp_tanimoto"].to_numpy(dtype=np.float64)


def domain_threshold(
    reference: TrainingReference, valid_keys: list[str], coverage: float = DOMAIN_COVERAGE
) -> float:
    """The ``max_ecfp_tanimoto`` below which a molecule is out of the applicability domain
    (:func:`coverage_threshold` of the validation molecules)."""
    if not reference.keys:
        return 0.0
    return coverage_threshold(max_training_tanimoto(reference.keys, valid_keys), coverage)


def ecfp4_bits(smiles: list[str]) -> torch.Tensor:
    """ECFP4 bit vectors as a float 0/1 matrix (the ecfp-rf baseline's fingerprints)."""
    from mmsa.eval.baselines import ecfp4

    return torch.from_numpy(ecfp4(smiles).astype(np.float32))


def tanimoto(query: torch.Tensor, base: torch.Tensor) -> torch.Tensor:
    """Tanimoto similarity of 0/1 rows: |a & b| / (|a| + |b| - |a & b|) (1 for two empty rows)."""
    common = query @ base.t()
    union = query.sum(1, keepdim=True) + base.sum(1) - common
    return torch.where(union > 0, common / union.clamp(min=1), torch.ones_like(common))


def nearest_training(
    reference: TrainingReference,
    tasks: list[str],
    keys: list[str],
    fused: np.ndarray | None,
    k: int,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The ``k`` nearest training molecules of each of ``keys``, and each molecule's largest
    similarities to any training molecule.

    ``fused`` are the molecules' fused embeddings; with fused embeddings in the reference too,
    neighbours are ranked by fused-space cosine, otherwise by ECFP4 Tanimoto (ties: the earlier
    training molecule first). The first table has one row per (molecule, neighbour): ``query``
    (position in ``keys``), ``rank`` (1 = nearest), ``neighbour`` (its key, a canonical SMILES),
    one ``<task>`` column per task with its label, ``ecfp_tanimoto`` and ``fused_cosine`` (NaN
    without fused embeddings). The second has ``max_ecfp_tanimoto`` and ``max_fused_cosine`` per
    molecule, in ``keys`` order.
    """
    k = min(k, len(reference.keys))
    base_bits, query_bits = ecfp4_bits(reference.keys), ecfp4_bits(keys)
    by_fused = reference.fused is not None and fused is not None
    if by_fused:
        base_z = F.normalize(torch.as_tensor(reference.fused, dtype=torch.float32), dim=1)
        query_z = F.normalize(torch.as_tensor(fused, dtype=torch.float32), dim=1)
    picks, ecfp, cosine, best_ecfp, best_cosine = [], [], [], [], []
    for start in range(0, len(keys), BLOCK):
        stop = min(start + BLOCK, len(keys))
        sim_ecfp = tanimoto(query_bits[start:stop], base_bits)
        sim_fused = query_z[start:stop] @ base_z.t() if by_fused else torch.full_like(sim_ecfp, float("nan"))
        order = torch.argsort(-(sim_fused if by_fused else sim_ecfp), dim=1, stable=True)[:, :k]
        picks.append(order)
        ecfp.append(sim_ecfp.gather(1, order))
        cosine.append(sim_fused.gather(1, order))
        best_ecfp.append(sim_ecfp.max(1).values if k else torch.full((stop - start,), float("nan")))
        best_cosine.append(sim_fused.max(1).values if k else torch.full((stop - start,), float("nan")))
    index = torch.cat(picks).numpy() if picks else np.zeros((0, k), dtype=np.int64)
    table = pd.DataFrame(
        {
            "query": np.repeat(np.arange(len(keys)), k),
            "rank": np.tile(np.arange(1, k + 1), len(keys)),
            "neighbour": np.asarray(reference.keys, dtype=object)[index.ravel()] if k else [],
        }
    )
    labels = reference.labels[index.ravel()] if k else np.zeros((0, len(tasks)))
    for t, task in enumerate(tasks):
        table[task] = labels[:, t]
    table["ecfp_tanimoto"] = torch.cat(ecfp).numpy().ravel() if ecfp else []
    table["fused_cosine"] = torch.cat(cosine).numpy().ravel() if cosine else []
    largest = pd.DataFrame(
        {
            "max_ecfp_tanimoto": torch.cat(best_ecfp).numpy() if best_ecfp else [],
            "max_fused_cosine": torch.cat(best_cosine).numpy() if best_cosine else [],
        }
    )
    return table, largest
