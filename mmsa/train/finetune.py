"""Per-task finetuning and evaluation of the compared models on one dataset split.

Models (all on the same split of the same molecules):

* ``mmsa``: the pretrained GIN plus the structure-aware head: a ``HypergraphConv`` over the
  dataset's kNN hypergraph in the pretrained embedding space, and the molecule's soft
  assignment to the pretrained memory anchors (the "typical representations");
* ``mmsa-graph``: the pretrained GIN with a linear head (how MMSA plugs into graph methods);
* ``no-pretrain``: the same GIN from random weights with a linear head;
* ``ecfp-rf``: ECFP4 fingerprints and a random forest (scikit-learn).

Neural models train with a loss masked to present labels, the epoch is chosen by the
validation metric and the test metric of that epoch is reported. Regression targets are
standardized with training-set statistics.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch_geometric.data import Data
from torch_geometric.loader import DataLoader
from torch_geometric.nn import HypergraphConv

from mmsa.eval.baselines import ecfp4, fit_predict_rf
from mmsa.eval.metrics import evaluate, masked_loss
from mmsa.eval.split import make_split
from mmsa.features.loader import FeatureStore
from mmsa.models.graph import GINEncoder
from mmsa.models.mmsa import MMSAModel
from mmsa.train.schedule import pick_device

log = logging.getLogger(__name__)

MODELS = ("mmsa", "mmsa-graph", "no-pretrain", "ecfp-rf")


@dataclass(frozen=True)
class FinetuneSettings:
    """Finetuning settings (``finetune.settings`` in the config)."""

    epochs: int = 30
    batch_size: int = 32
    lr: float = 1e-3
    weight_decay: float = 0.0
    dropout: float = 0.5
    split: str = "scaffold"
    split_fractions: list[float] = field(default_factory=lambda: [0.8, 0.1, 0.1])
    structure_dim: int = 64
    anchor_temperature: float = 0.1
    rf_trees: int = 200
    device: str = "auto"

    @classmethod
    def from_dict(cls, cfg: dict[str, Any] | None) -> FinetuneSettings:
        return cls(**(cfg or {}))


def load_labelled(shards: list[str], manifests: list[str]) -> pd.DataFrame:
    """The featurized rows of a dataset with their labels, in source row order."""
    labels = pd.concat([pq.read_table(s).to_pandas() for s in shards], ignore_index=True)
    featurized = pd.concat([pq.read_table(m, columns=["row"]).to_pandas() for m in manifests])
    frame = labels[labels["row"].isin(set(featurized["row"]))]
    return frame.sort_values("row").reset_index(drop=True)


def task_columns(frame: pd.DataFrame) -> list[str]:
    return [c for c in frame.columns if c not in ("row", "input", "key")]


class StructureContext(nn.Module):
    """Structure-aware features of molecules from the pretrained space (fixed, label-free).

    ``HypergraphConv`` runs over every molecule of the dataset on its pretrained fused
    embedding (the hypergraph has one hyperedge per molecule: itself and its k nearest
    neighbours), and each molecule's soft assignment to the memory anchors gives an
    anchor-weighted "typical" representation. Both are projected and concatenated.
    """

    def __init__(
        self, fused: Tensor, hyperedge_index: Tensor, anchors: Tensor | None, out_dim: int, temperature: float
    ) -> None:
        super().__init__()
        self.register_buffer("fused", fused.float())
        self.register_buffer("hyperedge_index", hyperedge_index.long())
        self.conv = HypergraphConv(fused.shape[1], out_dim)
        self.use_anchors = anchors is not None
        if anchors is not None:
            self.register_buffer("anchors", F.normalize(anchors.float(), dim=-1))
            self.anchor_proj = nn.Linear(anchors.shape[1], out_dim)
        self.temperature = temperature
        self.out_dim = out_dim * (2 if self.use_anchors else 1)

    def forward(self, index: Tensor) -> Tensor:
        """Context of dataset molecules ``index``."""
        context = F.relu(self.conv(self.fused, self.hyperedge_index))[index]
        return self._with_anchors(context, self.fused[index])

    def for_new(self, fused: Tensor, k: int) -> Tensor:
        """Context of molecules outside the dataset, from their pretrained fused embeddings.

        Each new molecule gets one hyperedge with its ``k`` nearest dataset molecules; the
        dataset's own hyperedges are left as they were, so its molecules' context is unchanged.
        """
        n, m = len(self.fused), len(fused)
        base, new = F.normalize(self.fused, dim=-1), F.normalize(fused.float(), dim=-1)
        neighbours = (new @ base.t()).topk(min(k, n), dim=1).indices  # (m, k)
        edge_ids = torch.arange(n, n + m, device=fused.device)
        members = torch.cat([edge_ids.unsqueeze(1), neighbours], dim=1)
        extra = torch.stack([members.reshape(-1), edge_ids.repeat_interleave(members.shape[1])])
        incidence = torch.cat([self.hyperedge_index, extra], dim=1)
        context = F.relu(self.conv(torch.cat([self.fused, fused.float()]), incidence))[n:]
        return self._with_anchors(context, fused.float())

    def _with_anchors(self, context: Tensor, fused: Tensor) -> Tensor:
        if not self.use_anchors:
            return context
        z = F.normalize(fused, dim=-1)
        weights = torch.softmax(z @ self.anchors.t() / self.temperature, dim=-1)
        return torch.cat([context, F.relu(self.anchor_proj(weights @ self.anchors))], dim=-1)


class PropertyModel(nn.Module):
    """GIN graph embedding (+ structure context) -> dropout -> linear task head."""

    def __init__(
        self, gin: GINEncoder, num_tasks: int, dropout: float, structure: StructureContext | None = None
    ) -> None:
        super().__init__()
        self.gin, self.structure = gin, structure
        width = gin.out_dim + (structure.out_dim if structure is not None else 0)
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(width, num_tasks))

    def forward(self, batch: Any, context: Tensor | None = None) -> Tensor:
        """Task outputs; ``context`` overrides the structure context (molecules outside the
        dataset), otherwise it is looked up by ``batch.idx``."""
        _, h = self.gin(batch.x, batch.edge_index, batch.edge_attr, batch.batch, batch.num_graphs)
        if self.structure is not None:
            h = torch.cat([h, self.structure(batch.idx) if context is None else context], dim=-1)
        return self.head(h)


def make_gin(
    pretrained: MMSAModel | None, feature_set: str, dropout: float, arch: dict[str, Any]
) -> GINEncoder:
    """A GIN with the pretrained weights, or a fresh one of the same architecture."""
    gin = GINEncoder(
        feature_set, arch["gnn_layers"], arch["gnn_dim"], dropout, arch["gnn_jk"], arch["gnn_pool"]
    )
    if pretrained is not None:
        gin.load_state_dict(pretrained.graph_encoder.state_dict())
    return gin


def graph_data(store: FeatureStore, keys: list[str], labels: np.ndarray) -> list[Data]:
    """Graph-only ``Data`` (images and coordinates are not used by the finetuned GIN)."""
    out = []
    for i, (d, y) in enumerate(zip(store.get(keys), labels, strict=True)):
        out.append(
            Data(
                x=d.x,
                edge_index=d.edge_index,
                edge_attr=d.edge_attr,
                y=torch.tensor(y, dtype=torch.float32).view(1, -1),
                idx=torch.tensor([i]),
            )
        )
    return out


def metric_value(y_true: np.ndarray, y_pred: np.ndarray, task_type: str) -> float:
    """The split's metric, or NaN when it is undefined (e.g. no task with both classes)."""
    try:
        return float(evaluate(y_true, y_pred, task_type)["value"])
    except ValueError:
        return float("nan")


def is_better(value: float, best: float | None, task_type: str) -> bool:
    """Whether a validation value beats the best so far (NaN never does)."""
    if np.isnan(value):
        return best is None
    if best is None or np.isnan(best):
        return True
    return value > best if task_type == "classification" else value < best


@torch.no_grad()
def predict(model: PropertyModel, data: list[Data], device: torch.device) -> np.ndarray:
    model.eval()
    out = [model(b.to(device)).float().cpu() for b in DataLoader(data, batch_size=256)]
    return torch.cat(out).numpy()


def train_neural(
    model: PropertyModel,
    data: list[Data],
    split: tuple[np.ndarray, ...],
    task_type: str,
    settings: FinetuneSettings,
    seed: int,
    device: torch.device,
) -> dict[str, Any]:
    """Train, pick the epoch by validation metric, report that epoch's test metric."""
    train, valid, test = split
    y = np.stack([d.y.numpy()[0] for d in data])
    mean, std = np.zeros(y.shape[1]), np.ones(y.shape[1])
    if task_type == "regression":
        mean, std = np.nanmean(y[train], 0), np.nanstd(y[train], 0) + 1e-8
    scale = (torch.as_tensor(mean, dtype=torch.float32), torch.as_tensor(std, dtype=torch.float32))
    generator = torch.Generator().manual_seed(seed)
    loader = DataLoader(
        [data[i] for i in train],
        batch_size=settings.batch_size,
        shuffle=True,
        generator=generator,
        drop_last=len(train) > settings.batch_size,
    )
    optimizer = torch.optim.Adam(model.parameters(), lr=settings.lr, weight_decay=settings.weight_decay)
    model.to(device)
    curve, best, best_state = [], None, None
    held_out = np.concatenate([valid, test])  # only these are predicted after each epoch
    for epoch in range(1, settings.epochs + 1):
        model.train()
        losses = []
        for batch in loader:
            batch = batch.to(device)
            target = (batch.y - scale[0].to(device)) / scale[1].to(device)
            loss = masked_loss(model(batch), target, task_type)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
        pred = predict(model, [data[i] for i in held_out], device) * std + mean
        if task_type == "classification":
            pred = 1.0 / (1.0 + np.exp(-pred))
        point = {
            "epoch": epoch,
            "train_loss": float(np.mean(losses)),
            "valid": metric_value(y[valid], pred[: len(valid)], task_type),
            "test": metric_value(y[test], pred[len(valid) :], task_type),
        }
        curve.append(point)
        log.info(
            "epoch %d/%d: train loss %.4f, valid %.4f, test %.4f",
            epoch,
            settings.epochs,
            point["train_loss"],
            point["valid"],
            point["test"],
        )
        if is_better(point["valid"], None if best is None else best["valid"], task_type):
            best = point
            best_state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    model.load_state_dict(best_state)
    return {
        "valid": best["valid"],
        "test": best["test"],
        "best_epoch": best["epoch"],
        "curve": curve,
        "target_mean": mean.tolist(),
        "target_std": std.tolist(),
    }


def run_finetune(
    model_name: str,
    frame: pd.DataFrame,
    task_type: str,
    store: FeatureStore,
    settings: FinetuneSettings,
    seed: int,
    pretrained: MMSAModel | None = None,
    hypergraph: np.ndarray | None = None,
    fused: np.ndarray | None = None,
    arch: dict[str, Any] | None = None,
) -> tuple[dict[str, Any], PropertyModel | None]:
    """Finetune and evaluate ``model_name`` on ``frame`` (key + task columns).

    Returns the metrics and, for neural models, the model with its best-epoch weights.
    """
    if model_name not in MODELS:
        raise ValueError(f"unknown model {model_name!r}; use one of {MODELS}")
    tasks = task_columns(frame)
    keys = frame["key"].tolist()
    y = frame[tasks].to_numpy(dtype=np.float64)
    split = make_split(keys, settings.split, tuple(settings.split_fractions), seed)
    metric = "roc_auc" if task_type == "classification" else "rmse"
    result: dict[str, Any] = {
        "model": model_name,
        "seed": seed,
        "task_type": task_type,
        "metric": metric,
        "tasks": len(tasks),
        "sizes": [len(s) for s in split],
    }
    torch.manual_seed(seed)
    if model_name == "ecfp-rf":
        fps = ecfp4(keys)
        train, valid, test = split
        both = np.concatenate([valid, test])
        pred = fit_predict_rf(
            fps[train], y[train], fps[both], task_type, seed, n_estimators=settings.rf_trees
        )
        result.update(
            valid=metric_value(y[valid], pred[: len(valid)], task_type),
            test=metric_value(y[test], pred[len(valid) :], task_type),
            best_epoch=None,
            curve=[],
        )
        return result, None
    device = pick_device(settings.device)
    arch = arch or (pretrained.config.to_dict() if pretrained is not None else {})
    feature_set = arch.get("feature_set", "hu")
    gin = make_gin(pretrained if model_name != "no-pretrain" else None, feature_set, settings.dropout, arch)
    structure = None
    if model_name == "mmsa":
        if pretrained is None or hypergraph is None or fused is None:
            raise ValueError("the mmsa model needs the pretrained model, embeddings and hypergraph")
        anchors = pretrained.memory.anchors if pretrained.memory is not None else None
        structure = StructureContext(
            torch.as_tensor(fused),
            torch.as_tensor(hypergraph),
            anchors,
            settings.structure_dim,
            settings.anchor_temperature,
        )
    model = PropertyModel(gin, len(tasks), settings.dropout, structure)
    result.update(train_neural(model, graph_data(store, keys, y), split, task_type, settings, seed, device))
    return result, model.cpu()


def log_result(dataset: str, result: dict[str, Any], path: str | os.PathLike) -> None:
    log.info(
        "%s %s seed %d: valid %s %.4f, test %.4f (epoch %s) -> %s",
        dataset,
        result["model"],
        result["seed"],
        result["metric"],
        result["valid"],
        result["test"],
        result["best_epoch"],
        path,
    )


def save_finetuned(
    model: PropertyModel,
    result: dict[str, Any],
    arch: dict[str, Any],
    settings: FinetuneSettings,
    tasks: list[str],
    config: dict[str, Any],
    path: str | os.PathLike,
) -> None:
    """Best-epoch weights and what is needed to rebuild and apply the model (weights-only file)."""
    from mmsa.io import atomic_path

    meta = {
        "model": result["model"],
        "dataset": result["dataset"],
        "task_type": result["task_type"],
        "tasks": tasks,
        "arch": arch,
        "dropout": settings.dropout,
        "structure_dim": settings.structure_dim,
        "anchor_temperature": settings.anchor_temperature,
        "hypergraph_k": config["finetune"]["hypergraph_k"],
        "target_mean": result["target_mean"],
        "target_std": result["target_std"],
        "uses_anchors": bool(model.structure is not None and model.structure.use_anchors),
    }
    with atomic_path(path) as tmp:
        torch.save({"meta": meta, "state_dict": model.state_dict()}, tmp)


def load_finetuned(path: str | os.PathLike) -> tuple[PropertyModel, dict[str, Any]]:
    """A model saved by :func:`save_finetuned`, in evaluation mode, and its metadata."""
    saved = torch.load(path, weights_only=True, map_location="cpu")
    meta, state = saved["meta"], saved["state_dict"]
    arch = meta["arch"]
    gin = make_gin(None, arch.get("feature_set", "hu"), meta["dropout"], arch)
    structure = None
    if "structure.fused" in state:
        anchors = state.get("structure.anchors") if meta["uses_anchors"] else None
        structure = StructureContext(
            torch.zeros_like(state["structure.fused"]),
            torch.zeros_like(state["structure.hyperedge_index"]),
            None if anchors is None else torch.zeros_like(anchors),
            meta["structure_dim"],
            meta["anchor_temperature"],
        )
    model = PropertyModel(gin, len(meta["tasks"]), meta["dropout"], structure)
    model.load_state_dict(state)
    return model.eval(), meta
