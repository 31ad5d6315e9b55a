"""The finetune and baseline stages: one compared model on one dataset, seed by seed."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from typing import Any

import pandas as pd
import pyarrow as pa

from mmsa.plan.datasets import dataset_spec
from mmsa.runtime.io import write_parquet, write_text
from mmsa.stages.inputs import feature_store, shard_files


def finetune(
    config: dict[str, Any],
    dataset: str,
    model_name: str,
    shards_dir: str | os.PathLike,
    manifests: Sequence[str | os.PathLike],
    splits: str | os.PathLike,
    results: Sequence[str | os.PathLike],
    predictions: Sequence[str | os.PathLike],
    weights: Sequence[str | os.PathLike] = (),
    model_path: str | os.PathLike | None = None,
    embeddings: str | os.PathLike | None = None,
    hypergraph_path: str | os.PathLike | None = None,
) -> list[dict[str, Any]]:
    """Finetune one model on one dataset for every configured seed (``finetune.seeds``, in
    order; ``results[i]``, ``predictions[i]`` and ``weights[i]`` belong to seed i): the metrics
    as JSON, the held-out predictions as Parquet and, for neural models, the best-epoch weights
    (for ``mmsa predict``)."""
    import numpy as np

    from mmsa.data.labelled_molecules import load_labelled
    from mmsa.models.pretrained_file import load_pretrained
    from mmsa.models.property import save_property_model
    from mmsa.plan.compared_models import compared_model
    from mmsa.plan.finetune_settings import FinetuneSettings
    from mmsa.runtime.device import pick_device
    from mmsa.runtime.hashing import sha256_file
    from mmsa.runtime.provenance import provenance
    from mmsa.stages.embed import read_embeddings
    from mmsa.train.finetune import DatasetInputs, run_seed

    compared = compared_model(model_name)
    seeds = config["finetune"]["seeds"]
    if (
        len(results) != len(seeds)
        or len(predictions) != len(seeds)
        or (compared.neural and len(weights) != len(seeds))
    ):
        raise ValueError(
            f"finetune {dataset}/{model_name}: one output of each kind per seed {seeds} is needed"
        )
    # a linear probe reads no finetune.settings, so its rule declares none
    settings = FinetuneSettings.from_dict(config["finetune"].get("settings", {}))
    frame = load_labelled(shard_files(shards_dir), manifests)
    data = DatasetInputs(dataset, dataset_spec(config, dataset).task_type, frame, pd.read_parquet(splits))
    if compared.neural:
        data.store = feature_store(config, manifests)
    if compared.pretrained or compared.hypergraph:
        data.pretrained = load_pretrained(model_path)
        data.arch = data.pretrained.config.to_dict()
    elif compared.neural:  # only a model without pretraining is handed (and reads) pretrain.settings
        data.arch = gin_architecture(config)
    if compared.embeddings:
        keys, fused = read_embeddings(embeddings)
        position = {k: i for i, k in enumerate(keys)}
        data.fused = fused[np.array([position[k] for k in frame["key"]])]
    if compared.hypergraph:
        data.hypergraph = pd.read_parquet(hypergraph_path)
    if compared.hypergraph or compared.neighbour_labels:
        data.neighbours = config["finetune"]["hypergraph_k"]
    record = provenance(str(pick_device(settings.device)) if compared.neural else "cpu")
    if model_path is not None:  # names the pretrained model behind the result
        record["pretrained_sha256"] = sha256_file(model_path)
    out = []
    for i, seed in enumerate(seeds):
        run = run_seed(model_name, data, settings, seed)
        result = {**run.result, "provenance": record}
        if run.model is not None:
            meta = {
                key: result[key] for key in ("model", "dataset", "task_type", "target_mean", "target_std")
            }
            meta.update(arch=data.arch, dropout=settings.dropout, tasks=data.tasks)
            save_property_model(run.model, meta, weights[i])
        write_parquet(pa.Table.from_pandas(run.predictions, preserve_index=False), predictions[i])
        write_text(json.dumps(result, indent=1) + "\n", results[i])
        out.append(result)
    return out


def gin_architecture(config: dict[str, Any]) -> dict[str, Any]:
    """The GIN architecture of the configured MMSA model (for models without pretraining)."""
    from mmsa.models.mmsa_config import MMSAConfig

    model = MMSAConfig.from_dict(
        {"feature_set": config["featurize"]["graph_features"], **config["pretrain"]["settings"]["model"]}
    )
    return model.to_dict()
