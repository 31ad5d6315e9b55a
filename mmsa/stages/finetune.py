"""The finetune and baseline stages: one compared model on one dataset, seed by seed."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
import pyarrow as pa

from mmsa.plan.datasets import dataset_spec
from mmsa.runtime.io import write_parquet, write_text
from mmsa.stages.inputs import feature_settings, feature_store, shard_files

if TYPE_CHECKING:  # torch is imported inside the functions, when a job runs them
    from mmsa.plan.compared_models import ComparedModel
    from mmsa.train.finetune_seeds import DatasetInputs


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
    checkpoints: str | os.PathLike | None = None,
) -> list[dict[str, Any]]:
    """Finetune one model on one dataset for every configured seed (``finetune.seeds``, in
    order; ``results[i]``, ``predictions[i]`` and ``weights[i]`` belong to seed i): the metrics
    as JSON, the held-out predictions as Parquet and, for neural models, the best-epoch weights
    (for ``mmsa predict``). Each finished seed is also kept in ``checkpoints``, so that a killed
    job's rerun starts after it (:mod:`mmsa.stages.finished_seeds`)."""
    from mmsa.plan.compared_models import compared_model
    from mmsa.plan.finetune_settings import FinetuneSettings
    from mmsa.runtime.device import pick_device
    from mmsa.runtime.hashing import sha256_file
    from mmsa.runtime.provenance import provenance
    from mmsa.stages.finished_seeds import FinishedSeeds, job_digest
    from mmsa.train.finetune_seeds import run_seed

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
    inputs = FinetuneInputs(shards_dir, manifests, splits, model_path, embeddings, hypergraph_path)
    # inputs are hashed only where seeds are kept (the workflow), not for every direct call
    digest = job_digest(config, f"{dataset}/{model_name}", inputs.paths()) if checkpoints is not None else ""
    finished = FinishedSeeds(checkpoints, digest)
    data = dataset_inputs(config, dataset, compared, inputs)
    record = provenance(str(pick_device(settings.device)) if compared.neural else "cpu")
    if model_path is not None:  # names the pretrained model behind the result
        record["pretrained_sha256"] = sha256_file(model_path)
    # only networks are saved, and only their slice holds the feature settings
    trained_on = _trained_on(config, splits, record.get("pretrained_sha256")) if compared.neural else {}
    per_seed = [
        [results[i], predictions[i], *([weights[i]] if compared.neural else [])] for i in range(len(seeds))
    ]
    out = []
    for i, (seed, outputs) in enumerate(zip(seeds, per_seed, strict=True)):
        if finished.reuse(seed, outputs):
            out.append(json.loads(Path(results[i]).read_text()))
            continue
        run = run_seed(model_name, data, settings, seed)
        result = {**run.result, "provenance": record}
        if run.model is not None:
            _save_weights(run.model, result, data, settings.dropout, weights[i], trained_on)
        write_parquet(pa.Table.from_pandas(run.predictions, preserve_index=False), predictions[i])
        write_text(json.dumps(result, indent=1) + "\n", results[i])
        finished.keep(seed, outputs)
        out.append(result)
    finished.clear([path for outputs in per_seed for path in outputs])
    return out


@dataclass(frozen=True)
class FinetuneInputs:
    """The files a finetune job reads: the dataset's shards and manifests, the split table, and
    what the compared model needs besides (pretrained model, frozen embeddings, hypergraphs)."""

    shards_dir: str | os.PathLike
    manifests: Sequence[str | os.PathLike]
    splits: str | os.PathLike
    model_path: str | os.PathLike | None = None
    embeddings: str | os.PathLike | None = None
    hypergraph: str | os.PathLike | None = None

    def paths(self) -> list[str | os.PathLike | None]:
        """Every path named, in field order (``None`` for what the model reads not): what the
        digest of a job's kept seeds covers, so a changed input file trains them again."""
        return [
            self.shards_dir,
            *self.manifests,
            self.splits,
            self.model_path,
            self.embeddings,
            self.hypergraph,
        ]


def dataset_inputs(
    config: dict[str, Any], dataset: str, compared: ComparedModel, files: FinetuneInputs
) -> DatasetInputs:
    """What ``compared`` reads of the dataset, built once: only the parts that model uses are read."""
    import numpy as np

    from mmsa.data.labelled_molecules import load_labelled
    from mmsa.models.pretrained_file import load_pretrained
    from mmsa.stages.embed import read_embeddings
    from mmsa.train.finetune_seeds import DatasetInputs

    reads = set(compared.reads)
    frame = load_labelled(shard_files(files.shards_dir), files.manifests)
    pretrained = load_pretrained(files.model_path) if {"weights", "anchors"} & reads else None
    if pretrained is not None:
        arch = pretrained.config.to_dict()
    else:  # only a model without pretraining is handed (and reads) pretrain.settings
        arch = gin_architecture(config) if compared.neural else {}
    fused = None
    if "embeddings" in reads:
        keys, embedded = read_embeddings(files.embeddings)
        position = {k: i for i, k in enumerate(keys)}
        fused = embedded[np.array([position[k] for k in frame["key"]])]
    store = feature_store(config, files.manifests) if {"graphs", "descriptors"} & reads else None
    return DatasetInputs(
        dataset,
        dataset_spec(config, dataset).task_type,
        frame,
        pd.read_parquet(files.splits),
        store=store if "graphs" in reads else None,
        arch=arch,
        pretrained=pretrained,
        fused=fused,
        hypergraph=pd.read_parquet(files.hypergraph) if "hypergraph" in reads else None,
        descriptors=store.descriptors(frame["key"].tolist()) if "descriptors" in reads else None,
        neighbours=config["finetune"]["neighbours"] if compared.neighbours else None,
    )


def _trained_on(
    config: dict[str, Any], splits: str | os.PathLike, pretrained_sha256: str | None
) -> dict[str, Any]:
    """What a finetuned model records of where it came from, for ``mmsa predict`` to check what
    it is handed against: the features it read (so new molecules are featurized alike), the
    SHA-256 of the pretrained model it was finetuned from (``None`` without one: ``--pretrained``
    must be that file), and ``run``, a digest of the finetuning settings, the split table and
    those two, which every seed model of one run shares (a seed folder mixing runs is refused)."""
    from mmsa.runtime.hashing import settings_digest, sha256_file

    features = feature_settings(config).record()
    run = {
        "settings": config["finetune"].get("settings", {}),
        "splits_sha256": sha256_file(splits),
        "pretrained_sha256": pretrained_sha256,
        "features": features,
    }
    return {"features": features, "pretrained_sha256": pretrained_sha256, "run": settings_digest(run)}


def _save_weights(
    model: Any,
    result: dict[str, Any],
    data: DatasetInputs,
    dropout: float,
    path: str | os.PathLike,
    trained_on: dict[str, Any],
) -> None:
    """A seed's best-epoch network with what ``mmsa predict`` needs to rebuild and use it and to
    check its inputs against (:func:`_trained_on`, and the seed), the seed's training molecules
    (keys, labels, fused embeddings where the model reads them) for the nearest known molecules
    that ``mmsa predict`` shows, and the applicability domain's threshold calibrated on the
    seed's validation molecules."""
    from mmsa.eval.splitters import split_positions
    from mmsa.models.property import save_property_model
    from mmsa.models.training_reference import DOMAIN_COVERAGE, TrainingReference, domain_threshold

    meta = {key: result[key] for key in ("model", "dataset", "task_type", "target_mean", "target_std")}
    meta.update(arch=data.arch, dropout=dropout, tasks=data.tasks, seed=result["seed"], **trained_on)
    train, valid, _ = split_positions(data.splits, data.frame["row"].to_numpy(), result["seed"])
    fused = None if data.fused is None else data.fused[train]
    reference = TrainingReference(data.frame["key"].iloc[train].tolist(), data.labels[train], fused)
    threshold = domain_threshold(reference, data.frame["key"].iloc[valid].tolist())
    meta["domain"] = {
        "max_ecfp_tanimoto": threshold,
        "coverage": DOMAIN_COVERAGE,
        "valid_molecules": len(valid),
    }
    save_property_model(model, meta, path, reference)


def gin_architecture(config: dict[str, Any]) -> dict[str, Any]:
    """The GIN architecture of the configured MMSA model (for models without pretraining)."""
    from mmsa.models.mmsa_config import MMSAConfig

    model = MMSAConfig.from_dict(
        {"feature_set": config["featurize"]["graph_features"], **config["pretrain"]["settings"]["model"]}
    )
    return model.to_dict()
