"""What a validated config asks for: which datasets, from where, in how many shards.

Shared by the Snakefile (to build the job graph) and the stages (to do the work), so the
two can never disagree about a dataset's source or shard count. The Snakefile's process
imports this module, so it must stay free of RDKit and torch (tests/workflow/test_workflow_imports.py):
settings objects that need them are built in :mod:`mmsa.stages.inputs`.
"""

from __future__ import annotations

import math
from typing import Any

from mmsa.data.registry import CORPUS, DatasetSpec, get_spec, mixture_spec
from mmsa.data.row_limit import RowLimit

ROW_LIMITS = ("max_rows", "sample_rows")  # the two ways to limit a dataset's rows, exclusive


def dataset_spec(config: dict[str, Any], name: str) -> DatasetSpec:
    """The registry spec of ``name`` with the config's source override, a custom spec, or for
    :data:`~mmsa.data.registry.CORPUS` the mixture that ``pretrain.corpus`` describes."""
    if name == CORPUS:
        return mixture_spec(config["pretrain"]["corpus"])
    data = config["data"]
    if name in data["custom"]:
        return get_spec(name, data["custom"][name])
    overrides = {"source": data["sources"][name]} if name in data["sources"] else {}
    return get_spec(name, overrides)


def fetched_from(config: dict[str, Any], name: str) -> dict[str, Any]:
    """What a dataset's fetch reads, as a rule parameter (a changed registry entry fetches
    again): its spec, and for the mixture each source's spec too."""
    spec = dataset_spec(config, name)
    sources = {source: dataset_spec(config, source).to_dict() for source in spec.mixture}
    return {**spec.to_dict(), "sources": sources} if sources else spec.to_dict()


def n_shards(config: dict[str, Any], name: str) -> int:
    """Shard count: explicit ``data.shards`` or expected rows / ``data.shard_size``."""
    data = config["data"]
    if name in data["shards"]:
        return int(data["shards"][name])
    rows = dataset_spec(config, name).expected_rows or data["shard_size"]
    for limit in ROW_LIMITS:
        if name in data[limit]:
            rows = min(rows, data[limit][name])
    return max(1, math.ceil(rows / data["shard_size"]))


def row_limit(config: dict[str, Any], name: str) -> RowLimit | None:
    """The rows of ``name`` that ``data.max_rows`` or ``data.sample_rows`` keep (None: all); a
    sample is drawn with the top-level seed."""
    data = config["data"]
    if name in data["sample_rows"]:
        return RowLimit("sample", data["sample_rows"][name], config["seed"])
    if name in data["max_rows"]:
        return RowLimit("first", data["max_rows"][name])
    return None


def duplicate_policy(config: dict[str, Any]) -> str | None:
    """The shard stage's duplicate policy; None when de-duplication is off, so that the
    label policy is not a rule parameter (and never reruns a job) while it has no effect."""
    data = config["data"]
    return data["duplicate_labels"] if data["dedupe"] else None


def all_datasets(config: dict[str, Any]) -> list[str]:
    """The pretraining corpus (none when pretrained weights are given) and every finetuning
    dataset, without repeats."""
    corpus = [] if config["pretrain"]["weights"] else [config["pretrain"]["dataset"]]
    return list(dict.fromkeys([*corpus, *config["finetune"]["datasets"]]))


def holdout_datasets(config: dict[str, Any], name: str) -> list[str]:
    """The finetuning datasets whose molecules the shard stage removes from ``name``: all of
    them (but itself) for the pretraining dataset, so no test molecule is seen in pretraining;
    none for any other dataset."""
    if name != config["pretrain"]["dataset"]:
        return []
    return [d for d in config["finetune"]["datasets"] if d != name]


def classification_datasets(config: dict[str, Any]) -> list[str]:
    """The finetuning datasets with classification tasks: the ones a reliability diagram is drawn for."""
    datasets = config["finetune"]["datasets"]
    return [d for d in datasets if dataset_spec(config, d).task_type == "classification"]
