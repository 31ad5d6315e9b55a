"""Pretraining across processes (``torchrun``): who this process is, and the collectives it needs.

A run started by ``torchrun`` finds ``RANK``, ``WORLD_SIZE`` and ``LOCAL_RANK`` in its
environment; :func:`process_group` then joins the group (gloo on the CPU, NCCL on GPUs) and
leaves it at the end. Without those variables everything here is a no-op, so a single process
runs exactly the code it ran before distributed training existed.

Each rank encodes its own slice of the global batch; the terms that compare molecules with each
other (in-batch negatives, the kNN hypergraph, the memory bank's balanced assignment) must see
the whole global batch. :class:`GlobalBatch` gathers the slices with gradient
(``torch.distributed.nn.functional.all_gather``, whose backward sums each rank's gradient
back into the slice that produced it), and lets the per-rank part of a step draw its own random
numbers without moving the random stream that the global part draws from, so that part (fusion
dropout, ...) is the same on every rank.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import Tensor

from mmsa.runtime.device import pick_device


@dataclass(frozen=True)
class Ranks:
    """This process's place in the group (rank 0 of 1 without ``torchrun``)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        """Rank 0 alone reads checkpoints and writes checkpoints and outputs."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def env_ranks() -> Ranks:
    """The ranks ``torchrun`` exported, or a single process when it did not."""
    return Ranks(
        int(os.environ.get("RANK", 0)),
        int(os.environ.get("WORLD_SIZE", 1)),
        int(os.environ.get("LOCAL_RANK", 0)),
    )


def rank_device(name: str, ranks: Ranks) -> torch.device:
    """The device of ``settings.device`` for this rank: its own GPU (``LOCAL_RANK``) when the
    processes of a node share the node's GPUs."""
    device = pick_device(name)
    if device.type == "cuda" and ranks.distributed and device.index is None:
        device = torch.device("cuda", ranks.local_rank)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    return device


@contextmanager
def process_group(device_name: str) -> Iterator[Ranks]:
    """Join the ``torchrun`` group for the block (gloo for the CPU, NCCL for GPUs)."""
    ranks = env_ranks()
    if not ranks.distributed:
        yield ranks
        return
    device = rank_device(device_name, ranks)
    dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    try:
        yield ranks
    finally:
        dist.destroy_process_group()


def in_group() -> bool:
    """Whether this process belongs to a group of more than one rank."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def gather_rows(tensor: Tensor) -> Tensor:
    """All ranks' ``tensor`` stacked along dim 0 in rank order, differentiable (itself alone
    outside a group). Every rank must pass the same shape."""
    if not in_group():
        return tensor
    from torch.distributed.nn.functional import all_gather

    return torch.cat(all_gather(tensor.contiguous()), dim=0)


def sum_over_ranks(tensor: Tensor) -> Tensor:
    """The sum of ``tensor`` over the ranks, differentiable, added in rank order so that every
    rank gets the same bits."""
    return gather_rows(tensor.unsqueeze(0)).sum(dim=0)


def broadcast_from_main(obj: Any) -> Any:
    """Rank 0's ``obj`` on every rank (picklable objects, e.g. a checkpoint's state on the CPU)."""
    if not in_group():
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


class GlobalBatch:
    """What a model step needs to see the global batch when each rank holds a slice of it.

    ``seed`` must be the same on every rank (the epoch's torch seed) and ``step`` the step's
    index; together with the rank they seed the per-rank random numbers (augmentation, encoder
    dropout), so a resumed run draws what an uninterrupted one drew.
    """

    def __init__(self, ranks: Ranks, seed: int, step: int) -> None:
        self.ranks, self.seed, self.step = ranks, seed, step

    def gather(self, tensor: Tensor) -> Tensor:
        """The global batch's rows of a per-molecule ``tensor`` (see :func:`gather_rows`)."""
        return gather_rows(tensor)

    def total(self, tensor: Tensor) -> Tensor:
        """The sum over ranks of a per-rank ``tensor`` (see :func:`sum_over_ranks`)."""
        return sum_over_ranks(tensor)

    @contextmanager
    def local_randomness(self, device: torch.device) -> Iterator[None]:
        """Run the block on a random stream of its own (per rank and step) and leave the shared
        stream where it was, so the global part of the step draws the same numbers on every rank."""
        local = int(np.random.SeedSequence([self.seed, self.step, self.ranks.rank]).generate_state(1)[0])
        devices = [device] if device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices, device_type=device.type):
            torch.manual_seed(local)
            yield
