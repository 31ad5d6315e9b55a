"""The part of the config each pipeline stage reads, and nothing else.

Every rule declares ``stage_config(config, stage, ...)`` as its ``config`` parameter and its
script hands that, not the whole config, to the stage. So the declaration cannot drift from the
code: a stage that reads a key its rule does not declare finds it missing and fails, instead of
leaving stale results behind; and Snakemake reruns a job exactly when the part it reads changes
(a changed ``gnn_dim`` reruns ``no-pretrain`` finetuning but no random forest).

Keys that say only where a stage's work runs, never what it writes (``dask.scheduler_address``)
are listed apart, in :data:`PLACEMENT`, and left out of the declared part: a rule's params are
a Snakemake rerun trigger, and moving the same job to a cluster must not rerun every job that
already has its (identical) outputs. The scripts read them from the workflow's whole config with
:func:`placement` and hand them to the stage as keyword arguments.

Paths name nested keys; one whose last key is absent (``data.max_rows.bbbp`` where bbbp has no
row limit) keeps its parent mapping, empty, so stages can look the key up.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any, get_args

from mmsa.data.registry import CORPUS
from mmsa.plan.compared_models import compared_model
from mmsa.plan.datasets import ROW_LIMITS
from mmsa.plan.finetune_settings import Reader, settings_read_by
from mmsa.plan.schema import section_keys

ConfigPath = tuple[str, ...]

WORK_KEYS = ("chunk_size",)  # keys of the featurize section that split the work, not the features
# featurize.conformer keys that can stop a featurize job but never change a feature (not part of
# the feature cache's fingerprint, nor of what a pretrained model records)
CONFORMER_GUARDS = ("timeout_s",)
# What the feature cache keys on: its folder and every other featurize key of the schema.
FEATURES: tuple[ConfigPath, ...] = (
    ("cache_dir",),
    *[("featurize", key) for key in section_keys("featurize") if key not in WORK_KEYS],
)
# What finetuning reads of finetune.settings, by group (compared_models.ComparedModel.settings_read).
SETTINGS_OF = {reader: settings_read_by(reader) for reader in get_args(Reader)}
# The pretrained-model keys that shape a GIN (models/property.py build_gin).
GIN_KEYS = ("gnn_layers", "gnn_dim", "gnn_jk", "gnn_pool")


def _source(dataset: str) -> list[ConfigPath]:
    """Where a dataset comes from and what its spec says (task type, label transform, rows)."""
    return [("data", "custom", dataset), ("data", "sources", dataset)]


def _row_limits(dataset: str) -> list[ConfigPath]:
    return [("data", limit, dataset) for limit in ROW_LIMITS]


def _finetune_settings(names: tuple[str, ...]) -> list[ConfigPath]:
    return [("finetune", "settings", name) for name in names]


def _fetch(config: dict[str, Any], dataset: str, model: str | None) -> list[ConfigPath]:
    if dataset == CORPUS:  # each source is sampled by the seed, as its config describes it
        sources = [path for name in config["pretrain"]["corpus"] for path in _source(name)]
        return [("cache_dir",), ("data", "local_dir"), ("pretrain", "corpus"), ("seed",), *sources]
    sampled = dataset in config["data"]["sample_rows"]
    return [
        ("cache_dir",),
        ("data", "local_dir"),
        *_source(dataset),
        *_row_limits(dataset),
        *([("seed",)] if sampled else []),  # the seed picks the rows of a sampled dataset only
    ]


def _shard(config: dict[str, Any], dataset: str, model: str | None) -> list[ConfigPath]:
    dedupe = config["data"]["dedupe"]
    return [
        *_source(dataset),
        *_row_limits(dataset),
        ("data", "shards", dataset),
        ("data", "shard_size"),
        *([("pretrain", "corpus")] if dataset == CORPUS else []),  # its size sets the shard count
        ("data", "dedupe"),
        *([("data", "duplicate_labels")] if dedupe else []),  # no effect without de-duplication
    ]


def _standardize(config: dict[str, Any], dataset: str, model: str | None) -> list[ConfigPath]:
    # the mixture's spec (its smiles column and task type) is built from pretrain.corpus
    mixture = [("pretrain", "corpus")] if dataset == CORPUS else []
    return [*_source(dataset), *mixture, ("data", "standardize")]


def _finetune(config: dict[str, Any], dataset: str, model: str | None) -> list[ConfigPath]:
    compared = compared_model(str(model))
    paths = [*_source(dataset), ("finetune", "seeds")]
    if compared.neural:
        paths += [*FEATURES, *_finetune_settings(SETTINGS_OF["neural"]), ("cpu_kernels",)]
        if "weights" not in compared.reads:  # its GIN has the configured architecture
            paths += [("pretrain", "settings", "model", key) for key in GIN_KEYS]
    if compared.neighbours:  # k neighbours, as many as the hypergraph stage's
        paths += [("finetune", "neighbours")]
    if "descriptors" in compared.reads:  # a classical model's descriptors, from the feature cache
        paths += [*FEATURES]
    for group in compared.settings_read:
        if group != "neural":
            paths += _finetune_settings(SETTINGS_OF[group])
    return paths


READS: dict[str, Callable[[dict[str, Any], Any, Any], list[ConfigPath]]] = {
    "fetch": _fetch,
    "standardize": _standardize,
    "shard": _shard,
    "featurize": lambda c, d, m: [*FEATURES, ("featurize", "chunk_size")],
    "pretrain": lambda c, d, m: [
        *FEATURES,
        ("pretrain", "settings"),
        ("pretrain", "processes"),
        ("seed",),
        ("torch_threads",),
        ("cpu_kernels",),
    ],
    "embed": lambda c, d, m: [
        *FEATURES,
        ("pretrain", "settings", "device"),
        ("torch_threads",),
        ("cpu_kernels",),
    ],
    # a given pretrained model, checked against the features and the GIN (mmsa.plan.pretrained_weights)
    "given_weights": lambda c, d, m: [
        ("pretrain", "weights"),
        *[p for p in FEATURES if p[0] == "featurize"],
        *[("pretrain", "settings", "model", key) for key in GIN_KEYS],
    ],
    "split": lambda c, d, m: [*_source(d), ("finetune", "seeds"), *_finetune_settings(SETTINGS_OF["split"])],
    "hypergraph": lambda c, d, m: [("finetune", "neighbours")],
    "finetune": _finetune,
    "held_out": lambda c, d, m: [*_source(d), ("finetune", "seeds")],
    "coverage": lambda c, d, m: [("pretrain", "dataset"), ("finetune", "datasets")],
    "report": lambda c, d, m: [
        ("pretrain",),
        ("finetune",),
        *[("data", limit) for limit in ROW_LIMITS],
        ("torch_threads",),
    ],
}
STAGES: tuple[str, ...] = tuple(READS)

# Where a stage's Dask tasks run (its keyword argument named after the path's last key). The
# results are the same bytes wherever they run, so these are not declared (see the docstring).
CLUSTER: tuple[ConfigPath, ...] = (("dask", "scheduler_address"),)
PLACEMENT: dict[str, tuple[ConfigPath, ...]] = {
    "standardize": CLUSTER,
    "shard": CLUSTER,
    "featurize": CLUSTER,
}


def stage_config(
    config: dict[str, Any], stage: str, dataset: str | None = None, model: str | None = None
) -> dict[str, Any]:
    """The nested part of a validated ``config`` that ``stage`` reads (for ``dataset`` and
    ``model`` where the stage runs per dataset or model)."""
    if stage not in READS:
        raise ValueError(f"unknown stage {stage!r}; one of {', '.join(STAGES)}")
    part: dict[str, Any] = {}
    for path in READS[stage](config, dataset, model):
        source, target = config, part
        for i, key in enumerate(path):
            if key not in source:
                break
            if i == len(path) - 1:
                target[key] = copy.deepcopy(source[key])
            else:
                source = source[key]
                target = target.setdefault(key, {})
    return part


def placement(config: dict[str, Any], stage: str) -> dict[str, Any]:
    """The keyword arguments that say where ``stage`` runs its tasks, from the whole ``config``
    (``{"scheduler_address": None}`` for a local run), or ``{}`` for a stage that runs no Dask
    tasks. A key absent from ``config`` (a config that was never validated) counts as null."""
    if stage not in READS:
        raise ValueError(f"unknown stage {stage!r}; one of {', '.join(STAGES)}")
    kwargs: dict[str, Any] = {}
    for path in PLACEMENT.get(stage, ()):
        value: Any = config
        for key in path:
            value = value.get(key) if isinstance(value, dict) else None
        kwargs[path[-1]] = value
    return kwargs
