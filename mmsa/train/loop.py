"""The supervised training loop of every finetuned model (Hu et al.'s protocol).

Adam on mini-batches of training molecules, a loss masked to the labels present, and after every
epoch the validation and test metrics computed from predictions of molecules *outside* the
training set (:func:`mmsa.models.property.predict_outputs`, the code ``mmsa predict`` uses; the
test metric only at epochs that improve validation and at the last). The
reported numbers are the test metric at the epoch with the best validation metric, as most
finetuning papers report, and the last epoch's, as Hu et al. report; the best epoch's weights
are what the job saves. With ``patience`` the loop stops once the validation metric has not
improved for that many epochs (the last epoch is then the one it stopped at).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch_geometric.data import Data
from torch_geometric.loader import DataLoader

from mmsa.eval.metrics import masked_loss, metric_of, metric_value
from mmsa.models.property import PropertyModel, predict_outputs, to_property_values

log = logging.getLogger(__name__)


@dataclass
class Part:
    """Molecules of one split part: graphs, labels (n, tasks; NaN = missing), and what the
    model's context reads of them: fused embeddings, canonical keys."""

    graphs: list[Data]
    labels: np.ndarray
    fused: np.ndarray | None = None
    keys: list[str] | None = None


@dataclass(frozen=True)
class LoopSettings:
    """What the loop needs from the finetuning settings."""

    epochs: int
    batch_size: int
    lr: float
    weight_decay: float
    patience: int  # epochs without validation improvement before stopping; 0 = never stop early
    freeze_epochs: int = 0  # first epochs in which the GIN is frozen and only the head learns
    encoder_lr: float = 1.0  # the GIN's learning rate after them, as a fraction of lr


@dataclass
class FitResult:
    """Metrics of a finished run, the per-epoch curve (``test`` only where it was scored) and the
    target scaling."""

    best_epoch: int
    valid: float
    test: float
    last_epoch: int
    valid_last: float
    test_last: float
    curve: list[dict[str, float]] = field(default_factory=list)
    target_mean: list[float] = field(default_factory=list)
    target_std: list[float] = field(default_factory=list)


def target_scaling(labels: np.ndarray, task_type: str) -> tuple[np.ndarray, np.ndarray]:
    """Mean and std that standardize regression targets (training rows only); identity otherwise."""
    tasks = labels.shape[1]
    if task_type != "regression":
        return np.zeros(tasks), np.ones(tasks)
    return np.nanmean(labels, 0), np.nanstd(labels, 0) + 1e-8


def part_predictions(
    model: PropertyModel, part: Part, task_type: str, scaling: tuple[np.ndarray, np.ndarray], device: Any
) -> np.ndarray:
    """Predictions (probabilities or values) for a held-out part."""
    outputs = predict_outputs(model, part.graphs, part.fused, device, keys=part.keys)
    return to_property_values(outputs, task_type, *scaling)


def _shuffled(train: Part, batch_size: int, seed: int) -> DataLoader:
    """The training molecules in a seeded order; the last partial batch is dropped unless it is
    the only one (batch norm cannot take a batch of one molecule)."""
    return DataLoader(
        train.graphs,
        batch_size=batch_size,
        shuffle=True,
        generator=torch.Generator().manual_seed(seed),
        drop_last=len(train.graphs) > batch_size,
    )


def _optimizer(model: PropertyModel, settings: LoopSettings) -> torch.optim.Optimizer:
    """Adam over the model; with a frozen start or a lower encoder rate, the GIN in a group of
    its own (the group's rate is set per epoch by :func:`_encoder_epoch`). Without either, one
    group, as the reference protocol (and every result before these settings) has it."""
    if settings.freeze_epochs == 0 and settings.encoder_lr == 1.0:
        return torch.optim.Adam(model.parameters(), lr=settings.lr, weight_decay=settings.weight_decay)
    encoder = {id(p) for p in model.gin.parameters()}
    rest = [p for p in model.parameters() if id(p) not in encoder]
    groups = [{"params": list(model.gin.parameters()), "encoder": True}, {"params": rest, "encoder": False}]
    return torch.optim.Adam(groups, lr=settings.lr, weight_decay=settings.weight_decay)


def _encoder_epoch(optimizer: torch.optim.Optimizer, settings: LoopSettings, epoch: int) -> bool:
    """Set the GIN's learning rate for ``epoch`` (1-based): 0 while frozen, then ``encoder_lr``
    x ``lr``; whether the GIN is frozen this epoch (it then stays in evaluation mode, so its
    batch statistics and dropout are those of the features it hands the head)."""
    frozen = epoch <= settings.freeze_epochs
    for group in optimizer.param_groups:
        if group.get("encoder"):
            group["lr"] = 0.0 if frozen else settings.lr * settings.encoder_lr
    return frozen


def _train_epoch(
    model: PropertyModel,
    loader: DataLoader,
    optimizer: torch.optim.Optimizer,
    task_type: str,
    device: torch.device,
    frozen_encoder: bool = False,
) -> float:
    """One pass over ``loader``; the mean training loss."""
    model.train()
    if frozen_encoder:
        model.gin.eval()
    losses = []
    for batch in loader:
        batch = batch.to(device)
        loss = masked_loss(model(batch), batch.y, task_type)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return float(np.mean(losses))


def _log_epoch(point: dict[str, float], epochs: int, metric: str) -> None:
    test = f", test {point['test']:.4f}" if "test" in point else ""
    log.info(
        "epoch %d/%d: train loss %.4f, valid %s %.4f%s",
        point["epoch"],
        epochs,
        point["train_loss"],
        metric,
        point["valid"],
        test,
    )


def fit(
    model: PropertyModel,
    train: Part,
    valid: Part,
    test: Part,
    task_type: str,
    settings: LoopSettings,
    seed: int,
    device: torch.device,
) -> FitResult:
    """Train ``model`` on ``train``; leave it holding the weights of the best validation epoch."""
    metric = metric_of(task_type)
    mean, std = target_scaling(train.labels, task_type)
    for graph, y in zip(train.graphs, train.labels, strict=True):
        graph.y = torch.as_tensor((y - mean) / std, dtype=torch.float32).view(1, -1)
    loader = _shuffled(train, settings.batch_size, seed)
    optimizer = _optimizer(model, settings)
    model.to(device)
    curve: list[dict[str, float]] = []
    best: dict[str, float] | None = None
    best_state: dict[str, torch.Tensor] = {}
    for epoch in range(1, settings.epochs + 1):
        frozen = _encoder_epoch(optimizer, settings, epoch)
        train_loss = _train_epoch(model, loader, optimizer, task_type, device, frozen)
        valid_score = metric_value(
            valid.labels, part_predictions(model, valid, task_type, (mean, std), device), task_type
        )
        improved = metric.is_better(valid_score, None if best is None else best["valid"])
        stopping = bool(
            not improved and settings.patience and epoch - int(best["epoch"]) >= settings.patience
        )
        point = {"epoch": epoch, "train_loss": train_loss, "valid": valid_score}
        # The test part is scored only where a result can be read from it: a new best validation
        # epoch or the last one (a prediction draws no random numbers, so skipping it leaves
        # training unchanged; it was a tenth of a finetuning epoch).
        if improved or stopping or epoch == settings.epochs:
            point["test"] = metric_value(
                test.labels, part_predictions(model, test, task_type, (mean, std), device), task_type
            )
        curve.append(point)
        _log_epoch(point, settings.epochs, metric.name)
        if improved:
            best = point
            best_state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
        elif stopping:
            log.info("no validation improvement for %d epochs: stopping", settings.patience)
            break
    assert best is not None
    model.load_state_dict(best_state)
    last = curve[-1]
    return FitResult(
        best_epoch=int(best["epoch"]),
        valid=best["valid"],
        test=best["test"],
        last_epoch=int(last["epoch"]),
        valid_last=last["valid"],
        test_last=last["test"],
        curve=curve,
        target_mean=mean.tolist(),
        target_std=std.tolist(),
    )
