"""The ``mmsa-labels`` head's context: how a molecule's nearest training molecules are labelled.

For property prediction the most useful thing a neighbouring molecule carries is its label (why
a kNN on fingerprints is a strong baseline). ``mmsa-labels`` gives the linear head, beside the
finetuned GIN's embedding, label statistics of the molecule's hyperedge: its ``k`` nearest
training molecules, by cosine similarity in the pretrained fused space (``space="fused"``) or by
Tanimoto similarity of ECFP4 fingerprints (``space="ecfp"``). With weights
``w_j = max(similarity_j, 0)`` and ``m_jt = 1`` where neighbour j is labelled for task t:

* per task, the weighted mean label ``sum_j w_j m_jt y_jt / sum_j w_j m_jt`` (0 when no
  neighbour is labelled), regression labels being the standardized training targets;
* per task, the support ``sum_j w_j m_jt / k``: how much similar, labelled evidence there is,
  so that the head can learn how far to trust the mean;
* once, the mean similarity ``sum_j w_j / k``: how far the molecule lies from the training set.

It is inductive and leak-free like the ``mmsa`` head. Only training molecules are neighbours. A
training molecule's own context leaves out itself and every training molecule with its canonical
key (its duplicates): were its own label in its input, the head would learn to copy it, and a
new molecule has no label to copy. Any other molecule (validation, test, ``mmsa predict``) takes
its ``k`` nearest training molecules, whatever they are, so its context depends on nothing else
predicted with it. The contexts have no parameters: the training molecules' is computed once.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mmsa.eval.baselines import ecfp4
from mmsa.models.head_inputs import HeadInputs
from mmsa.plan.finetune_settings import FinetuneSettings

SPACES = ("fused", "ecfp")
ECFP_BITS = 2048  # ecfp4's default length; the saved reference holds them packed, 8 per byte

# Molecules whose similarities to every training molecule are computed at once (a block of
# QUERY_BLOCK x n_train float32), so the training molecules' own contexts fit a small machine's
# memory even for the paper config's largest training set (~74,000 molecules: 0.6 GB).
QUERY_BLOCK = 2048


class NeighbourLabels(nn.Module):
    """Label statistics of each molecule's ``k`` nearest training molecules (no parameters).

    Build it with :meth:`from_training`; the constructor is also how a saved one is rebuilt.

    Args:
        space: ``"fused"`` or ``"ecfp"``, where the neighbours are taken.
        reference: the training molecules in that space: fused embeddings (n, d) or ECFP4 bits
            packed by ``np.packbits`` (n, 256) uint8.
        labels: their labels (n, tasks), NaN = missing; regression ones standardized.
        k: neighbours per molecule.
        train_keys: their canonical keys (a training molecule's duplicates share its key).
        train_context: the training molecules' contexts, when already computed (a saved model).
    """

    name: ClassVar[str] = "labels"  # its entry in mmsa.plan.compared_models.HEADS
    meta_key: ClassVar[str] = "neighbour_labels"  # its settings' key in a saved model's metadata

    def __init__(
        self,
        space: str,
        reference: Tensor,
        labels: Tensor,
        k: int,
        train_keys: list[str],
        train_context: Tensor | None = None,
    ) -> None:
        super().__init__()
        if space not in SPACES:
            raise ValueError(f"unknown neighbour space {space!r}; use one of {', '.join(SPACES)}")
        if k < 1:
            raise ValueError("the label context needs k >= 1 neighbours")
        if not (len(reference) == len(labels) == len(train_keys)):
            raise ValueError("the training reference, labels and keys must have one row per molecule")
        self.space, self.k, self.train_keys = space, k, list(train_keys)
        self.register_buffer("reference", reference)
        self.register_buffer("labels", labels.float())
        self.out_dim = 2 * labels.shape[1] + 1
        if train_context is None:
            groups = {key: i for i, key in enumerate(dict.fromkeys(self.train_keys))}
            key_ids = torch.tensor([groups[key] for key in self.train_keys])
            train_context = self._context(self._base(), key_ids)
        self.register_buffer("train_context", train_context)

    @classmethod
    def from_training(
        cls, space: str, keys: list[str], labels: np.ndarray, k: int, fused: np.ndarray | None = None
    ) -> NeighbourLabels:
        """The context over training molecules ``keys`` with ``labels`` (and, in the fused
        space, their pretrained ``fused`` embeddings)."""
        if space == "fused":
            if fused is None:
                raise ValueError("neighbours in the fused space need the molecules' fused embeddings")
            reference = torch.as_tensor(np.asarray(fused), dtype=torch.float32)
        else:
            reference = torch.from_numpy(np.packbits(ecfp4(keys), axis=1))
        return cls(space, reference, torch.as_tensor(np.asarray(labels), dtype=torch.float32), k, keys)

    @classmethod
    def build(cls, inputs: HeadInputs, settings: FinetuneSettings) -> NeighbourLabels:
        """The context over a seed's training molecules, in ``finetune.settings.label_space``,
        ``finetune.neighbours`` neighbours per molecule."""
        if inputs.neighbours is None or (settings.label_space == "fused" and inputs.fused is None):
            raise ValueError("mmsa-labels needs its neighbour count and, in the fused space, the embeddings")
        return cls.from_training(
            settings.label_space, inputs.keys, inputs.labels, inputs.neighbours, inputs.fused
        )

    @property
    def reads_fused(self) -> bool:
        """Whether new molecules are placed by their pretrained fused embeddings."""
        return self.space == "fused"

    def new_context(
        self, fused: np.ndarray | None, keys: list[str] | None, device: torch.device | str
    ) -> Tensor:
        """:meth:`for_new` of molecules given as a prediction receives them (on the reference's
        device)."""
        return self.for_new(fused, keys)

    def saved_meta(self) -> dict[str, Any]:
        """What :meth:`from_saved` needs beside the buffers."""
        return {"space": self.space, "k": self.k, "train_keys": self.train_keys}

    @classmethod
    def from_saved(cls, meta: dict[str, Any], state: dict[str, Tensor]) -> NeighbourLabels:
        """The context of a saved model."""
        return cls(
            meta["space"],
            state["structure.reference"],
            state["structure.labels"],
            meta["k"],
            meta["train_keys"],
            state["structure.train_context"],
        )

    def forward(self, index: Tensor) -> Tensor:
        """Contexts of training molecules ``index`` (positions among the training molecules)."""
        return self.train_context[index]

    @torch.no_grad()
    def for_new(self, fused: Tensor | np.ndarray | None = None, keys: list[str] | None = None) -> Tensor:
        """Contexts of molecules outside the training set, from their fused embeddings (fused
        space) or their canonical keys (ECFP space)."""
        device = self.reference.device
        if self.space == "fused":
            if fused is None:
                raise ValueError("the fused-space label context needs the molecules' fused embeddings")
            query = torch.as_tensor(fused, dtype=torch.float32, device=device)
        else:
            if keys is None:
                raise ValueError("the ECFP label context needs the molecules' canonical keys")
            query = torch.as_tensor(ecfp4(keys), dtype=torch.float32, device=device)
        return self._context(self._base(), None, query)

    def _base(self) -> Tensor:
        """The training molecules as rows to compare against (float32)."""
        if self.space == "fused":
            return self.reference.float()
        bits = np.unpackbits(self.reference.cpu().numpy(), axis=1)[:, :ECFP_BITS]
        return torch.as_tensor(bits, dtype=torch.float32, device=self.reference.device)

    def _similarity(self, query: Tensor, base: Tensor) -> Tensor:
        if self.space == "fused":
            return F.normalize(query, dim=-1) @ F.normalize(base, dim=-1).t()
        shared = query @ base.t()  # exact: bit counts are small integers
        union = query.sum(1, keepdim=True) + base.sum(1) - shared
        return torch.where(union > 0, shared / union.clamp(min=1), torch.zeros_like(shared))

    def _context(self, base: Tensor, key_ids: Tensor | None, query: Tensor | None = None) -> Tensor:
        """Contexts of ``query`` rows, or of the training molecules themselves (``query`` None,
        ``key_ids`` their key groups: each leaves its own group out)."""
        rows = base if query is None else query
        out = []
        for start in range(0, len(rows), QUERY_BLOCK):
            sim = self._similarity(rows[start : start + QUERY_BLOCK], base)
            if key_ids is not None:
                own = key_ids[start : start + QUERY_BLOCK, None].to(sim.device) == key_ids.to(sim.device)
                sim = sim.masked_fill(own, -float("inf"))
            out.append(self._statistics(sim))
        if not out:
            return torch.zeros(0, self.out_dim, device=base.device)
        return torch.cat(out)

    def _statistics(self, sim: Tensor) -> Tensor:
        """Weighted label mean, support and mean similarity from query x training similarities."""
        values, neighbours = sim.topk(min(self.k, sim.shape[1]), dim=1)
        weights = values.clamp(min=0)  # excluded molecules (-inf) weigh 0
        labels = self.labels[neighbours]  # (m, k, tasks)
        labelled = ~torch.isnan(labels)
        mass = weights.unsqueeze(-1) * labelled  # (m, k, tasks)
        evidence = mass.sum(1)
        total = (mass * torch.nan_to_num(labels)).sum(1)
        mean = torch.where(evidence > 0, total / evidence.clamp(min=1e-12), torch.zeros_like(total))
        return torch.cat([mean, evidence / self.k, weights.sum(1, keepdim=True) / self.k], dim=1)
