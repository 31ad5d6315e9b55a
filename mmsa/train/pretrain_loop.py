"""The pretraining loop: MMSA's self-supervised objective over a streamed corpus.

Checkpoints are written after every epoch under a temporary name and renamed, so a job killed
at any moment resumes from the last complete epoch. Each epoch reseeds torch from
``(seed, epoch)`` and the batch order depends only on ``(seed, epoch)``, so a resumed run on
the CPU reproduces an uninterrupted one exactly. On the CPU the weights are bitwise identical
between runs of the same settings, data and torch thread count (the thread count changes how
float reductions are split, and a few last bits grow into different weights within an epoch;
it is part of the checkpoint's fingerprint and recorded in ``throughput.json``). The fingerprint
also covers the molecules trained on (the manifests' keys, not their paths) and the package's
code, so a rerun never resumes from, or publishes, a checkpoint of other inputs.

Under ``torchrun`` (``ranks`` of more than one process) the model is wrapped in
DistributedDataParallel, its batch norms normalize over the global batch, each rank streams its
slice of every global batch of ``batch_size`` molecules and the model gathers the slices for
the terms that compare molecules (see :mod:`mmsa.runtime.distributed`). Every rank then computes the
same global loss and keeps the same memory bank; rank 0 alone reads the checkpoint (and hands
its state to the others) and writes checkpoints and outputs. The number of processes is in the
fingerprint: the float sums are split differently, so the weights differ in their last bits.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from mmsa.features.cache import FeatureCache
from mmsa.features.loader import FeatureStore, manifest_digest, read_manifests
from mmsa.models.batchnorm import global_batchnorm
from mmsa.models.mmsa import MMSAModel
from mmsa.models.mmsa_config import MMSAConfig
from mmsa.runtime.distributed import GlobalBatch, Ranks, broadcast_from_main, rank_device
from mmsa.runtime.hashing import code_digest, settings_digest
from mmsa.runtime.io import save_torch
from mmsa.runtime.kernels import kernel_provenance
from mmsa.runtime.parallel import prefetched
from mmsa.runtime.progress import Progress
from mmsa.runtime.provenance import provenance
from mmsa.train.pretrain_outputs import write_outputs
from mmsa.train.pretrain_settings import PretrainResult, PretrainSettings
from mmsa.train.schedule import warmup_cosine
from mmsa.train.stream import ShardBatches, batch_loader

log = logging.getLogger(__name__)

# The per-epoch torch seed is ``seed * EPOCH_SEED_STRIDE + epoch``. With plain ``seed + epoch``,
# run seed 1's first epoch would replay run seed 0's second one (and so on): runs meant to be
# independent repeats would share their dropout and augmentation draws. The stride, a prime
# above any epoch count, keeps (seed, epoch) -> torch seed one-to-one.
EPOCH_SEED_STRIDE = 100_003
SCALING_MOLECULES = 65_536  # corpus molecules whose descriptors set the descriptor term's scaling


def build_model(settings: PretrainSettings, feature_set: str) -> MMSAModel:
    """The MMSA model for graph features of ``feature_set``."""
    return MMSAModel(MMSAConfig.from_dict({"feature_set": feature_set, **settings.model}))


def corpus_descriptors(
    manifests: list[str | os.PathLike], cache: FeatureCache, seed: int, limit: int = SCALING_MOLECULES
) -> Any:
    """The raw descriptors of the corpus's molecules (of a seeded sample of ``limit`` of them on
    a larger corpus): what the descriptor term's standardization is fitted on."""
    import numpy as np

    store = FeatureStore(cache, read_manifests(manifests))
    keys = sorted(store.keys)
    if len(keys) > limit:
        chosen = np.random.default_rng(seed).choice(len(keys), size=limit, replace=False)
        keys = [keys[i] for i in sorted(chosen)]
    return store.descriptors(keys)


def _autocast(device: torch.device, settings: PretrainSettings) -> torch.autocast:
    """bfloat16 autocast on a GPU with ``amp``; on the CPU only with ``amp_on_cpu`` as well."""
    if settings.amp and (device.type == "cuda" or (device.type == "cpu" and settings.amp_on_cpu)):
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return torch.autocast("cpu", enabled=False)


@dataclass
class _Run:
    """What a pretraining run steps: the model (wrapped for DDP in ``trainee``), its optimizer
    and its learning-rate schedule, with the checkpoint state they make together, and where it
    runs."""

    model: MMSAModel
    trainee: torch.nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LambdaLR
    settings: PretrainSettings
    ranks: Ranks
    device: torch.device

    @classmethod
    def start(
        cls,
        model: MMSAModel,
        trainee: torch.nn.Module,
        settings: PretrainSettings,
        ranks: Ranks,
        device: torch.device,
        total_steps: int,
    ) -> _Run:
        """AdamW and a warmup-cosine schedule over ``total_steps`` for ``model``."""
        optimizer = torch.optim.AdamW(model.parameters(), lr=settings.lr, weight_decay=settings.weight_decay)
        warmup = int(settings.warmup_fraction * total_steps)
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, warmup_cosine(total_steps, warmup))
        return cls(model, trainee, optimizer, scheduler, settings, ranks, device)

    def state(self, digest: str, epoch: int, history: list[dict[str, Any]]) -> dict[str, Any]:
        return {
            "digest": digest,
            "epoch": epoch,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "history": history,
        }

    def load(self, state: Mapping[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])


def _stream(
    manifests: list[str | os.PathLike],
    cache: FeatureCache,
    settings: PretrainSettings,
    seed: int,
    ranks: Ranks,
) -> ShardBatches:
    """This rank's slice of every global batch, in an order fixed by ``(seed, epoch)``."""
    return ShardBatches(
        manifests,
        cache,
        settings.batch_size,
        seed,
        window=settings.shuffle_window,
        rank=ranks.rank,
        world_size=ranks.world_size,
    )


def _run_digest(
    settings: PretrainSettings,
    seed: int,
    manifests: list[str | os.PathLike],
    cache: FeatureCache,
    ranks: Ranks,
) -> str:
    """The fingerprint a checkpoint must carry to be resumed (see the module docstring)."""
    return settings_digest(
        {
            "settings": settings.to_dict(),
            "seed": seed,
            "molecules": manifest_digest(manifests),
            "features": cache.settings.to_dict(),
            "code": code_digest(),
            "torch_threads": torch.get_num_threads(),
            "cpu_kernels": kernel_provenance(),  # a checkpoint from other kernels is not resumed
            "processes": ranks.world_size,
        }
    )


def _resumed(run: _Run, checkpoint: Path, digest: str) -> tuple[int, list[dict[str, Any]]]:
    """The epoch to start from and the loss history so far: from the checkpoint when it has this
    run's digest (rank 0 reads it and hands it to the others), else from the start."""
    state = None
    if run.ranks.is_main and run.settings.resume and checkpoint.exists():
        state = _read_checkpoint(checkpoint, run.device if not run.ranks.distributed else torch.device("cpu"))
    state = broadcast_from_main(state)
    if state is None:
        return 0, []
    if state.get("digest") != digest:
        log.warning("ignoring checkpoint %s: it belongs to other settings or data", checkpoint)
        return 0, []
    run.load(state)
    log.info("resuming from %s after epoch %d", checkpoint, state["epoch"])
    return state["epoch"], state["history"]


@dataclass
class _Clock:
    """Wall time, time spent waiting for batches, and molecules seen (all ranks)."""

    start: float = field(default_factory=time.perf_counter)
    data_seconds: float = 0.0
    molecules: int = 0


def _train_epoch(
    run: _Run,
    loader: Any,
    steps: int,
    epoch: int,
    epoch_seed: int,
    history: list[dict[str, Any]],
    clock: _Clock,
) -> None:
    """One epoch (0-based ``epoch``) of ``steps`` optimizer steps; each step's losses go to ``history``."""
    settings, ranks, device = run.settings, run.ranks, run.device
    progress = Progress(f"epoch {epoch + 1}/{settings.epochs}", steps, log, every=25)
    fetch_start = time.perf_counter()
    for batch in prefetched(loader):
        batch = batch.to(device)
        clock.data_seconds += time.perf_counter() - fetch_start
        global_batch = GlobalBatch(ranks, epoch_seed, len(history)) if ranks.distributed else None
        with _autocast(device, settings):
            output = run.trainee(batch, global_batch)
        run.optimizer.zero_grad(set_to_none=True)
        output["loss"].backward()
        torch.nn.utils.clip_grad_norm_(run.model.parameters(), settings.grad_clip)
        run.optimizer.step()
        run.scheduler.step()
        clock.molecules += batch.num_graphs * ranks.world_size
        history.append(
            {
                "step": len(history) + 1,
                "epoch": epoch + 1,
                "lr": run.scheduler.get_last_lr()[0],
                "loss": output["loss"].item(),
                **{k: v.item() for k, v in output["losses"].items()},
            }
        )
        progress.update()
        fetch_start = time.perf_counter()


def train_mmsa(
    manifests: list[str | os.PathLike],
    cache: FeatureCache,
    settings: PretrainSettings,
    seed: int,
    out_dir: str | os.PathLike,
    checkpoint: str | os.PathLike,
    stop_after_epoch: int | None = None,
    ranks: Ranks | None = None,
) -> PretrainResult:
    """Pretrain on the molecules of ``manifests``; write weights, curves and records to ``out_dir``.

    ``stop_after_epoch`` ends the run early after that many epochs (as a kill would), leaving a
    checkpoint to resume from; used by tests of resumption. ``ranks`` places this process in a
    ``torchrun`` group whose process group is already set up (default: a single process).
    """
    ranks = ranks or Ranks()
    device = rank_device(settings.device, ranks)
    torch.manual_seed(seed)
    model = build_model(settings, cache.settings.graph_features)
    if model.descriptor_term is not None:  # saved with the model; a resumed run loads the same
        model.descriptor_term.set_scaling(corpus_descriptors(manifests, cache, seed))
    model = model.to(device)
    trainee = distributed_model(model, device) if ranks.distributed else model
    dataset = _stream(manifests, cache, settings, seed, ranks)
    steps_per_epoch = dataset.batches_per_epoch(settings.loader_workers)
    if steps_per_epoch == 0:
        raise ValueError(f"fewer molecules than one batch of {settings.batch_size}; lower batch_size")
    run = _Run.start(model, trainee, settings, ranks, device, steps_per_epoch * settings.epochs)
    digest = _run_digest(settings, seed, manifests, cache, ranks)
    checkpoint = Path(checkpoint)
    start_epoch, history = _resumed(run, checkpoint, digest)
    loader = batch_loader(dataset, settings.loader_workers)
    log.info(
        "pretraining on %s: %d epochs x %d steps of %d molecules",
        device,
        settings.epochs,
        steps_per_epoch,
        settings.batch_size,
    )
    clock = _Clock()
    last_epoch = settings.epochs if stop_after_epoch is None else min(settings.epochs, stop_after_epoch)
    for epoch in range(start_epoch, last_epoch):
        epoch_seed = seed * EPOCH_SEED_STRIDE + epoch
        torch.manual_seed(epoch_seed)
        dataset.set_epoch(epoch)
        model.train()
        _train_epoch(run, loader, steps_per_epoch, epoch, epoch_seed, history, clock)
        if ranks.is_main:
            save_torch(run.state(digest, epoch + 1, history), checkpoint)
        log.info(
            "epoch %d: mean loss %.4f",
            epoch + 1,
            sum(h["loss"] for h in history[-steps_per_epoch:]) / steps_per_epoch,
        )
    result = _result(last_epoch, history, clock, device)
    if ranks.is_main and (stop_after_epoch is None or last_epoch == settings.epochs):
        write_outputs(Path(out_dir), model, settings, cache, history, result)
    return result


def _result(
    epochs: int, history: list[dict[str, Any]], clock: _Clock, device: torch.device
) -> PretrainResult:
    wall = time.perf_counter() - clock.start
    return PretrainResult(
        epochs=epochs,
        steps=len(history),
        molecules=clock.molecules,
        wall_seconds=round(wall, 2),
        molecules_per_second=round(clock.molecules / wall, 1) if wall > 0 else 0.0,
        data_fraction=round(clock.data_seconds / wall, 4) if wall > 0 else 0.0,
        device=str(device),
        final_loss=history[-1]["loss"] if history else float("nan"),
        peak_gpu_mb=_peak_gpu_mb(device),
        provenance=provenance(str(device)),
    )


def _peak_gpu_mb(device: torch.device) -> float | None:
    if device.type != "cuda":
        return None
    return round(torch.cuda.max_memory_allocated(device) / 2**20, 1)


def distributed_model(model: MMSAModel, device: torch.device) -> torch.nn.Module:
    """``model`` in DistributedDataParallel, its batch norms over the global batch.

    ``find_unused_parameters``: a rank whose slice has no conformer skips the 3D encoder, and
    DDP must then still reduce (zero) gradients for its parameters.
    """
    global_batchnorm(model)
    return torch.nn.parallel.DistributedDataParallel(
        model, device_ids=[device.index] if device.type == "cuda" else None, find_unused_parameters=True
    )


def _read_checkpoint(checkpoint: Path, device: torch.device) -> dict[str, Any] | None:
    """The checkpoint's state, or ``None`` (with a warning) when it cannot be read.

    Checkpoints are renamed into place complete, but a node that loses power shortly after may
    leave a truncated file behind (the rename reached the disk before the data); training then
    starts over instead of failing at every retry.
    """
    try:
        return torch.load(checkpoint, weights_only=True, map_location=device)
    except Exception as err:  # truncated zip, foreign pickle, ...: torch raises many kinds
        log.warning("ignoring checkpoint %s: unreadable (%s: %s)", checkpoint, type(err).__name__, err)
        return None
