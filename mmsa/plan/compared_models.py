"""The models every results table compares, and what each one needs: the one place that knows.

The config schema, the Snakemake rules (which inputs a job reads), finetuning (which code runs)
and the report (column order) all read this table, so adding or renaming a model is one edit.
It imports nothing heavy, because the process that runs Snakemake reads it too.

Every model is trained and scored on the same split of the same molecules:

* ``mmsa``: the pretrained GIN with MMSA's structure-aware head, inductive: the head's kNN
  hypergraph holds training molecules only, and validation and test molecules join it exactly
  the way ``mmsa predict`` attaches a new molecule (one hyperedge with its nearest training
  molecules), so the reported test score is the score of the model a user deploys;
* ``mmsa-labels``: the pretrained GIN whose linear head also reads the labels of the molecule's
  ``finetune.hypergraph_k`` nearest training molecules (in the fused space, or ECFP4 Tanimoto
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


@dataclass(frozen=True)
class ComparedModel:
    """One model of the comparison and the pipeline outputs it reads."""

    name: str
    summary: str
    trained: str  # "finetuned" (a neural network, saved for `mmsa predict`), "forest" or "linear"
    pretrained: bool = False  # reads the pretrained model
    embeddings: bool = False  # reads the dataset's frozen MMSA embeddings
    hypergraph: bool = False  # reads the dataset's training-molecule hypergraph
    neighbour_labels: bool = False  # its head reads its training neighbours' labels
    descriptors: bool = False  # reads the molecules' RDKit descriptors from the feature cache

    @property
    def neural(self) -> bool:
        return self.trained == "finetuned"


MODELS: dict[str, ComparedModel] = {
    m.name: m
    for m in (
        ComparedModel(
            "mmsa",
            "pretrained GIN + structure-aware head (inductive hypergraph, memory anchors)",
            "finetuned",
            pretrained=True,
            embeddings=True,
            hypergraph=True,
        ),
        ComparedModel(
            "mmsa-labels",
            "pretrained GIN + its training neighbours' labels (kNN, inductive)",
            "finetuned",
            pretrained=True,
            embeddings=True,
            neighbour_labels=True,
        ),
        ComparedModel("mmsa-graph", "pretrained GIN + linear head", "finetuned", pretrained=True),
        ComparedModel("no-pretrain", "GIN from random weights + linear head", "finetuned"),
        ComparedModel("ecfp-rf", "ECFP4 + random forest", "forest"),
        ComparedModel(
            "rf-physchem", "count Morgan + RDKit descriptors + random forest", "forest", descriptors=True
        ),
        ComparedModel("mmsa-probe", "linear model on the frozen MMSA embedding", "linear", embeddings=True),
        ComparedModel(
            "ecfp-mmsa-rf", "random forest on ECFP4 + frozen MMSA embedding", "forest", embeddings=True
        ),
        ComparedModel(
            "physchem-mmsa-rf",
            "count Morgan + RDKit descriptors + frozen MMSA embedding + random forest",
            "forest",
            embeddings=True,
            descriptors=True,
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
