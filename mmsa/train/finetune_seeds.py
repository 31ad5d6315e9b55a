"""Finetune and score one compared model (:mod:`mmsa.plan.compared_models`) on one dataset, seed by seed.

One process runs every seed of a (dataset, model) pair: the features, labels, splits and
pretrained model are read once, and each seed starts from ``torch.manual_seed(seed)`` and a
loader generator seeded alike, so a seed's result does not depend on which seeds ran before it.
Every model reads the split stage's table, so all of them are trained and scored on the same
molecules. Each seed yields its metrics, the predictions for its validation and test molecules
and, for neural models, the best-epoch weights (for ``mmsa predict``).
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import torch

from mmsa.data.labelled_molecules import label_columns
from mmsa.eval.baselines import ecfp4, fit_predict_linear, fit_predict_rf, physchem_features
from mmsa.eval.metrics import metric_of, metric_value, undefined_reason
from mmsa.eval.splitters import PARTS, split_positions
from mmsa.features.descriptors import DESCRIPTOR_NAMES
from mmsa.features.loader import FeatureStore
from mmsa.models.descriptor_term import DescriptorScaler
from mmsa.models.head_inputs import HeadInputs
from mmsa.models.heads import HEAD_TYPES, Head
from mmsa.models.mmsa import MMSAModel
from mmsa.models.property import PropertyModel, build_gin, graph_data, reads_fused
from mmsa.plan.compared_models import ComparedModel, compared_model
from mmsa.plan.finetune_settings import FinetuneSettings
from mmsa.runtime.device import pick_device
from mmsa.train.loop import FitResult, LoopSettings, Part, fit, part_predictions, target_scaling

log = logging.getLogger(__name__)


@dataclass
class DatasetInputs:
    """Everything finetuning reads about one dataset (``frame`` from :func:`load_labelled`)."""

    name: str
    task_type: str
    frame: pd.DataFrame
    splits: pd.DataFrame
    store: FeatureStore | None = None  # graph features (neural models)
    arch: dict[str, Any] = field(default_factory=dict)  # the GIN architecture (an MMSA model config)
    pretrained: MMSAModel | None = None
    fused: np.ndarray | None = None  # frozen fused MMSA embeddings, rows in ``frame`` order
    hypergraph: pd.DataFrame | None = None  # training hypergraphs: seed, hyperedge, member (keys)
    descriptors: np.ndarray | None = None  # raw RDKit descriptors, rows in ``frame`` order (NaN = failed)
    # finetune.neighbours: the training neighbours a held-out molecule's hyperedge holds (mmsa),
    # or the labelled neighbours of its context (mmsa-labels). Taken from the config: the
    # hypergraph's own hyperedges are smaller where a split trains on k or fewer molecules
    neighbours: int | None = None

    @property
    def tasks(self) -> list[str]:
        return label_columns(self.frame)

    @property
    def labels(self) -> np.ndarray:
        return self.frame[self.tasks].to_numpy(dtype=np.float64)


def loop_settings(settings: FinetuneSettings) -> LoopSettings:
    """What the training loop reads of the finetuning settings."""
    return LoopSettings(
        settings.epochs,
        settings.batch_size,
        settings.lr,
        settings.weight_decay,
        settings.patience,
        settings.freeze_epochs,
        settings.encoder_lr,
    )


@dataclass
class SeedRun:
    """What one seed produced: the result record, held-out predictions, the trained network."""

    result: dict[str, Any]
    predictions: pd.DataFrame
    model: PropertyModel | None = None


def seed_incidence(table: pd.DataFrame, seed: int, train_keys: list[str]) -> torch.Tensor:
    """The hypergraph stage's incidence for ``seed`` as positions among ``train_keys``."""
    mine = table[table["seed"] == seed]
    position = {k: i for i, k in enumerate(train_keys)}
    try:
        nodes = [position[k] for k in mine["member"]]
        edges = [position[k] for k in mine["hyperedge"]]
    except KeyError as err:
        raise ValueError(
            f"the hypergraph of seed {seed} holds {err.args[0]!r}, not a training molecule"
        ) from None
    if len(set(edges)) != len(train_keys):
        raise ValueError(f"the hypergraph of seed {seed} does not span every training molecule")
    return torch.tensor([nodes, edges], dtype=torch.long)


def _neural(
    compared: ComparedModel,
    data: DatasetInputs,
    seed: int,
    split: tuple[np.ndarray, ...],
    settings: FinetuneSettings,
    device: torch.device,
) -> tuple[FitResult, dict[str, np.ndarray], PropertyModel]:
    torch.manual_seed(seed)
    if data.store is None:
        raise ValueError(f"{compared.name} needs the dataset's features")
    pretrained = None
    if compared.pretrained:
        if data.pretrained is None or data.pretrained.graph_encoder is None:
            raise ValueError(f"{compared.name} needs a pretrained model with a graph encoder")
        pretrained = data.pretrained.graph_encoder
    gin = build_gin(data.arch, settings.dropout, pretrained)
    keys, labels = data.frame["key"].tolist(), data.labels
    structure: Head | None = None
    if compared.head in HEAD_TYPES:
        structure = HEAD_TYPES[compared.head].build(_head_inputs(data, split[0], seed), settings)
    descriptors = None
    if settings.descriptor_inputs:  # standardized with the training part's statistics only
        descriptors = DescriptorScaler(len(DESCRIPTOR_NAMES), settings.descriptor_clip)
        descriptors.set_scaling(data.store.descriptors([keys[i] for i in split[0]]))
    model = PropertyModel(gin, len(data.tasks), structure, descriptors)
    fused = reads_fused(model)
    parts = [
        Part(
            graph_data(data.store.get([keys[i] for i in index])),
            labels[index],
            data.fused[index] if fused else None,
            [keys[i] for i in index],
        )
        for index in split
    ]
    result = fit(model, *parts, data.task_type, loop_settings(settings), seed, device)
    scaling = (np.asarray(result.target_mean), np.asarray(result.target_std))
    predictions = {
        name: part_predictions(model, part, data.task_type, scaling, device)
        for name, part in zip(PARTS[1:], parts[1:], strict=True)
    }
    return result, predictions, model.cpu()


def _head_inputs(data: DatasetInputs, train: np.ndarray, seed: int) -> HeadInputs:
    """What a head may be built from: the seed's training molecules (``train``: positions in
    ``data.frame``), their labels in the units the network is trained on (regression targets
    standardized as :func:`fit` does), and what the model read of the pretraining."""
    keys = data.frame["key"].iloc[train].tolist()
    labels = data.labels[train]
    mean, std = target_scaling(labels, data.task_type)
    memory = None if data.pretrained is None else data.pretrained.memory
    return HeadInputs(
        keys,
        (labels - mean) / std,
        None if data.fused is None else data.fused[train],
        None if data.hypergraph is None else seed_incidence(data.hypergraph, seed, keys),
        None if memory is None else memory.anchors,
        data.neighbours,
    )


def _fingerprints(data: DatasetInputs) -> np.ndarray:
    return ecfp4(data.frame["key"].tolist())


def _physchem(data: DatasetInputs) -> np.ndarray:
    if data.descriptors is None:
        raise ValueError("physchem features need the dataset's descriptors")
    return physchem_features(data.frame["key"].tolist(), data.descriptors)


def _embedding(data: DatasetInputs) -> np.ndarray:
    if data.fused is None:
        raise ValueError("embedding features need the dataset's MMSA embeddings")
    return data.fused


# A classical model's features by name (mmsa.plan.compared_models.FEATURE_SETS), rows in
# ``data.frame`` order.
FEATURE_SETS = {"ecfp": _fingerprints, "physchem": _physchem, "embedding": _embedding}


def _classical(
    compared: ComparedModel,
    data: DatasetInputs,
    seed: int,
    split: tuple[np.ndarray, ...],
    settings: FinetuneSettings,
) -> dict[str, np.ndarray]:
    train, valid, test = split
    labels = data.labels
    features = [FEATURE_SETS[name](data) for name in compared.features]
    # one set as it is; several joined as float32 (what a forest reads them as)
    x = features[0] if len(features) == 1 else np.hstack([f.astype(np.float32) for f in features])
    if compared.trained == "linear":
        pred_valid, pred_test = fit_predict_linear(
            x[train], labels[train], x[valid], labels[valid], x[test], data.task_type
        )
        return {"valid": pred_valid, "test": pred_test}
    held_out = np.concatenate([valid, test])
    forest = compared.forest_args(settings)
    pred = fit_predict_rf(x[train], labels[train], x[held_out], data.task_type, seed, **forest)
    return {"valid": pred[: len(valid)], "test": pred[len(valid) :]}


def run_seed(model_name: str, data: DatasetInputs, settings: FinetuneSettings, seed: int) -> SeedRun:
    """Train and score ``model_name`` on ``seed``'s split of ``data``."""
    compared = compared_model(model_name)
    split = split_positions(data.splits, data.frame["row"].to_numpy(), seed)
    metric = metric_of(data.task_type)
    labels = data.labels
    result: dict[str, Any] = {
        "dataset": data.name,
        "model": model_name,
        "seed": seed,
        "task_type": data.task_type,
        "metric": metric.name,
        "higher_is_better": metric.higher_is_better,
        "tasks": len(data.tasks),
        "sizes": [len(s) for s in split],
    }
    model = None
    if compared.neural:
        device = pick_device(settings.device)
        fitted, predictions, model = _neural(compared, data, seed, split, settings, device)
        result.update(asdict(fitted))
    else:
        predictions = _classical(compared, data, seed, split, settings)
        valid_value = metric_value(labels[split[1]], predictions["valid"], data.task_type)
        test_value = metric_value(labels[split[2]], predictions["test"], data.task_type)
        result.update(
            best_epoch=None,
            valid=valid_value,
            test=test_value,
            last_epoch=None,
            valid_last=valid_value,
            test_last=test_value,
            curve=[],
        )
    result["test_undefined"] = undefined_reason(labels[split[2]], predictions["test"], data.task_type)
    log.info(
        "%s %s seed %d: valid %s %.4f, test %.4f (best epoch %s; last epoch %s: test %.4f)",
        data.name,
        model_name,
        seed,
        metric.name,
        result["valid"],
        result["test"],
        result["best_epoch"],
        result["last_epoch"],
        result["test_last"],
    )
    return SeedRun(result, prediction_frame(data, split, predictions), model)


def prediction_frame(
    data: DatasetInputs, split: tuple[np.ndarray, ...], predictions: dict[str, np.ndarray]
) -> pd.DataFrame:
    """Held-out predictions: ``row``, ``key``, ``part`` and one column per task."""
    frames = []
    for name, index in zip(PARTS[1:], split[1:], strict=True):
        frame = data.frame.iloc[index][["row", "key"]].reset_index(drop=True)
        frame.insert(2, "part", name)
        values = pd.DataFrame(np.asarray(predictions[name]).reshape(len(index), -1), columns=data.tasks)
        frames.append(pd.concat([frame, values], axis=1))
    return pd.concat(frames, ignore_index=True)
