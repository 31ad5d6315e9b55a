"""The models every results table compares, and what each one needs: the one place that knows.

A model is declared once, by how it is trained and what it is built from: a network by its
head (:data:`HEADS`) and whether its GIN starts from the pretrained one, a classical model by
its features (:data:`FEATURE_SETS`). Everything else follows from that declaration and is asked of
it: the Snakemake rules (which files a job reads, :attr:`ComparedModel.reads`), the config slices
(which settings, :attr:`ComparedModel.settings_read`), the finetune stage (what it loads), the
training code (the head or features it builds, by name) and the report (column order). A new model
of known parts is one entry here; a new head is a :class:`Head` here and its network in
:mod:`mmsa.models.heads` (docs/extending.md). This module imports nothing heavy, because the
process that runs Snakemake reads it too.

Every model is trained and scored on the same split of the same molecules:

* ``mmsa``: the pretrained GIN with MMSA's structure-aware head, inductive: the head's kNN
  hypergraph holds training molecules only, and validation and test molecules join it exactly
  the way ``mmsa predict`` attaches a new molecule (one hyperedge with its nearest training
  molecules), so the reported test score is the score of the model a user deploys;
* ``mmsa-labels``: the pretrained GIN whose linear head also reads the labels of the molecule's
  ``finetune.neighbours`` nearest training molecules (in the fused space, or ECFP4 Tanimoto
  with ``finetune.settings.label_space: ecfp``; :mod:`mmsa.models.neighbour_labels`), inductive
  the same way; a training molecule's own label and its duplicates' never reach its context;
* ``mmsa-graph``: the pretrained GIN with a linear head: the like-for-like number against
  graph-only pretraining methods (Hu et al. 2020, GraphMVP);
* ``no-pretrain``: the same GIN from random weights with a linear head (the reference protocol);
* ``ecfp-rf``: ECFP4 fingerprints and a random forest, the classical baseline;
* ``rf-physchem``: count Morgan fingerprints plus RDKit's 2D descriptors (the feature cache's
  descriptor view) and a random forest of 500 trees on log2 features per split: the forest
  chemists use, and the strongest classical reference;
* ``mmsa-probe``: a linear model on the frozen fused MMSA embedding (how much the pretrained
  representation holds, without finetuning);
* ``ecfp-mmsa-rf``: the random forest on ECFP4 concatenated with the frozen MMSA embedding (what
  the representation adds to fingerprints);
* ``physchem-mmsa-rf``: ``rf-physchem``'s forest on its features concatenated with the frozen
  MMSA embedding (what the representation adds to the strongest classical reference).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mmsa.plan.finetune_settings import FinetuneSettings, Reader

# What a compared model's job can read besides labels and the split: the pretrained GIN's weights
# and its memory anchors (both in the pretraining's model.pt), the dataset's frozen fused
# embeddings and training hypergraphs (pipeline outputs), and from the feature cache the
# molecules' graphs or RDKit descriptors.
READS = ("weights", "anchors", "embeddings", "hypergraph", "graphs", "descriptors")
# The reads that come from the pretraining's model.pt (embeddings too: its SHA-256 names the model
# behind the result)
FROM_PRETRAINED = ("weights", "anchors", "embeddings")


@dataclass(frozen=True)
class Head:
    """What a finetuned GIN puts beside its embedding before the linear layer, as the plan sees it:
    what it reads, its settings and whether it takes ``finetune.neighbours`` neighbours. Its
    network is registered under the same name in :data:`mmsa.models.heads.HEAD_TYPES`."""

    name: str
    reads: tuple[str, ...] = ()
    settings: Reader | None = None  # its group of finetune.settings (mmsa.plan.finetune_settings)
    neighbours: bool = False


HEADS: dict[str, Head] = {
    h.name: h
    for h in (
        Head("linear"),  # the linear layer alone (Hu et al.'s protocol)
        Head("structure", ("anchors", "embeddings", "hypergraph"), "structure", neighbours=True),
        Head("labels", ("embeddings",), "labels", neighbours=True),
    )
}


@dataclass(frozen=True)
class FeatureSet:
    """Features of a classical model (forest or linear): what they read, and the forest they come
    with (None: the configured one, ``finetune.settings.rf_trees`` trees). Each is computed by
    :data:`mmsa.train.finetune_seeds.FEATURE_SETS` under the same name."""

    name: str
    reads: tuple[str, ...] = ()
    forest: dict[str, Any] | None = None


FEATURE_SETS: dict[str, FeatureSet] = {
    f.name: f
    for f in (
        FeatureSet("ecfp"),  # ECFP4 bits
        # count Morgan + raw RDKit descriptors with the forest the field runs on them: 500 trees,
        # log2(features) per split (fixed, not tuned: the reference a representation must reach)
        FeatureSet("physchem", ("descriptors",), {"n_estimators": 500, "max_features": "log2"}),
        FeatureSet("embedding", ("embeddings",)),  # the frozen fused MMSA embedding
    )
}


@dataclass(frozen=True)
class ComparedModel:
    """One model of the comparison: how it is trained and what it is built from; what its jobs
    read and which settings they take follow from that (:attr:`reads`, :attr:`settings_read`)."""

    name: str
    summary: str
    trained: str  # "finetuned" (a neural network, saved for `mmsa predict`), "forest" or "linear"
    pretrained: bool = False  # a network that starts from the pretrained GIN
    head: str = "linear"  # a network's head (HEADS)
    features: tuple[str, ...] = ()  # a classical model's features, joined in this order (FEATURE_SETS)

    def __post_init__(self) -> None:
        if self.trained == "finetuned":
            if self.head not in HEADS or self.features:
                raise ValueError(f"{self.name}: a network has a head of {sorted(HEADS)} and no features")
        elif self.trained in ("forest", "linear"):
            if self.pretrained or self.head != "linear" or not self.features:
                raise ValueError(f"{self.name}: a classical model has features, no head, no pretrained GIN")
            if not set(self.features) <= set(FEATURE_SETS):
                raise ValueError(f"{self.name}: features are of {sorted(FEATURE_SETS)}")
        else:
            raise ValueError(f"{self.name}: trained is finetuned, forest or linear, not {self.trained!r}")

    @property
    def neural(self) -> bool:
        return self.trained == "finetuned"

    @property
    def reads(self) -> tuple[str, ...]:
        """What its jobs read (of :data:`READS`, in that order)."""
        if self.neural:
            wanted = {"graphs", *HEADS[self.head].reads, *(("weights",) if self.pretrained else ())}
        else:
            wanted = {r for f in self.features for r in FEATURE_SETS[f].reads}
        return tuple(r for r in READS if r in wanted)

    @property
    def reads_pretrained(self) -> bool:
        """Whether its jobs read the pretraining's model.pt."""
        return any(r in FROM_PRETRAINED for r in self.reads)

    @property
    def neighbours(self) -> bool:
        """Whether it takes ``finetune.neighbours`` training neighbours."""
        return self.neural and HEADS[self.head].neighbours

    @property
    def settings_read(self) -> tuple[Reader, ...]:
        """The groups of finetune.settings it reads (:mod:`mmsa.plan.finetune_settings`)."""
        if self.neural:
            head = HEADS[self.head].settings
            return ("neural", *((head,) if head else ()))
        return ("forest",) if self.trained == "forest" and self.fixed_forest is None else ()

    @property
    def fixed_forest(self) -> dict[str, Any] | None:
        """The forest its features come with, or None (the configured forest, or no forest)."""
        fixed = [FEATURE_SETS[f].forest for f in self.features if FEATURE_SETS[f].forest]
        return fixed[0] if fixed and self.trained == "forest" else None

    def forest_args(self, settings: FinetuneSettings) -> dict[str, Any]:
        """The scikit-learn arguments of its forest."""
        return self.fixed_forest or {"n_estimators": settings.rf_trees}


MODELS: dict[str, ComparedModel] = {
    m.name: m
    for m in (
        ComparedModel(
            "mmsa",
            "pretrained GIN + structure-aware head (inductive hypergraph, memory anchors)",
            "finetuned",
            pretrained=True,
            head="structure",
        ),
        ComparedModel(
            "mmsa-labels",
            "pretrained GIN + its training neighbours' labels (kNN, inductive)",
            "finetuned",
            pretrained=True,
            head="labels",
        ),
        ComparedModel("mmsa-graph", "pretrained GIN + linear head", "finetuned", pretrained=True),
        ComparedModel("no-pretrain", "GIN from random weights + linear head", "finetuned"),
        ComparedModel("ecfp-rf", "ECFP4 + random forest", "forest", features=("ecfp",)),
        ComparedModel(
            "rf-physchem",
            "count Morgan + RDKit descriptors + random forest",
            "forest",
            features=("physchem",),
        ),
        ComparedModel(
            "mmsa-probe", "linear model on the frozen MMSA embedding", "linear", features=("embedding",)
        ),
        ComparedModel(
            "ecfp-mmsa-rf",
            "random forest on ECFP4 + frozen MMSA embedding",
            "forest",
            features=("ecfp", "embedding"),
        ),
        ComparedModel(
            "physchem-mmsa-rf",
            "count Morgan + RDKit descriptors + frozen MMSA embedding + random forest",
            "forest",
            features=("physchem", "embedding"),
        ),
    )
}
MODEL_NAMES: tuple[str, ...] = tuple(MODELS)
# The references every model is compared with, seed by seed on the same splits (the report's
# paired differences): the same GIN without pretraining, and the classical baselines.
REFERENCES: tuple[str, ...] = ("no-pretrain", "ecfp-rf", "rf-physchem")


def compared_model(name: str) -> ComparedModel:
    """The model called ``name`` (ValueError naming the known ones otherwise)."""
    try:
        return MODELS[name]
    except KeyError:
        raise ValueError(f"unknown model {name!r}; use one of {', '.join(MODEL_NAMES)}") from None
