"""Stream batches of featurized molecules from a dataset's shards, with flat memory.

An epoch visits the shards in a seeded random order. Within a shard it shuffles in two levels,
the way chunked streaming loaders do: blocks of consecutive molecules of the shard (in a cache
the shard filled, the image chunks stored together) are put in random order, and the molecules
of each window of ``window`` batches (drawn from many random blocks) are shuffled among
themselves. A window is read from the feature cache in
one grouped read, so each compressed chunk is decoded once per epoch rather than once per batch
that touches it (reading 64 random rows touched ~50 chunks per batch and made data loading a
fifth of the step time on CPU). Only one shard's key list and one window of molecules are held
at a time, so a corpus of millions of molecules streams in flat memory. The order depends only
on (seed, epoch, number of loader workers) and the shards, not on how the cache was filled
(which job or dataset cached a molecule first): that makes a resumed run identical to an
uninterrupted one, and a cluster run identical to a local one.

Every molecule is trained on every epoch: a shard's molecules that do not fill a batch are
carried into the next shard's first batch, and the epoch's last batch (of each loader worker)
is filled up with the epoch's first molecules, so it is whole too. Every batch holds
``batch_size`` molecules: the terms that compare molecules see as many in every step, and a
run on several ranks can split every batch into equal slices (dropping each shard's last
partial batch instead left 16 of the tiny run's 48 molecules out of training).

Under ``torchrun`` every rank computes this same order of global batches of ``batch_size``
molecules and reads only its slice of each: rank r of R takes the r-th run of
``batch_size / R`` molecules of every global batch. Gathered in rank order, the slices are the
batch one process would train on, so runs on any number of ranks see the same molecules in the
same batches and their loss curves can be compared step by step.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence

import numpy as np
import pyarrow.compute as pc
import pyarrow.parquet as pq
from torch.utils.data import DataLoader, IterableDataset, get_worker_info
from torch_geometric.data import Batch

from mmsa.features.cache import IMAGE_CHUNK, FeatureCache
from mmsa.features.loader import FeatureStore, read_manifests
from mmsa.runtime.hashing import stable_int

Molecule = tuple[str, str]  # (shard manifest, key): where the stream reads a molecule from


class ShardBatches(IterableDataset):
    """Batches (PyG ``Batch``) of one epoch over the molecules listed in ``manifests``.

    ``batch_size`` is the global batch; rank ``rank`` of ``world_size`` gets its slice of each
    (``batch_size / world_size`` molecules), see the module docstring.
    """

    def __init__(
        self,
        manifests: Sequence[str | os.PathLike],
        cache: FeatureCache,
        batch_size: int,
        seed: int,
        window: int = 8,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        if batch_size % world_size:
            raise ValueError(f"batch_size {batch_size} is not divisible by the {world_size} processes")
        self.rank, self.world_size = rank, world_size
        self.manifests = [str(m) for m in manifests]
        self.cache = cache
        self.batch_size = batch_size
        self.window = window
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Choose the epoch whose order the next iteration follows."""
        self.epoch = epoch

    def batches_per_epoch(self, workers: int = 0) -> int:
        """How many batches one epoch yields (shards are split between loader workers).

        Counts what :meth:`__iter__` visits: each shard's distinct molecules, not its rows (with
        ``data.dedupe: false`` a shard lists a molecule once per dataset row), in batches that
        run on across the shards of a worker. A worker with fewer molecules than one batch
        could fill its batch only with repeats, so that is an error.
        """
        total = 0
        for worker, part in enumerate(self._partition(max(1, workers))):
            n = sum(shard_molecules(m) for m in part)
            if 0 < n < self.batch_size:
                raise ValueError(
                    f"loader worker {worker} streams {n} molecules, fewer than one batch of "
                    f"{self.batch_size}: lower batch_size or loader_workers"
                )
            total += -(-n // self.batch_size)
        return total

    def _partition(self, workers: int) -> list[list[str]]:
        order = np.random.default_rng([self.seed, self.epoch]).permutation(len(self.manifests))
        shards = [self.manifests[i] for i in order]
        return [shards[w::workers] for w in range(workers)]

    def __iter__(self) -> Iterator[Batch]:
        info = get_worker_info()
        workers, worker = (info.num_workers, info.id) if info else (1, 0)
        stores: dict[str, FeatureStore] = {}
        carry: list[Molecule] = []  # the last shard's molecules short of a whole batch
        head: list[Molecule] = []  # the epoch's first batch, which fills up the last one
        for shard in self._partition(workers)[worker]:
            manifest = read_manifests([shard])
            kept = {s: stores[s] for s, _ in carry}  # only the carried molecules' shards stay open
            stores = kept | {shard: FeatureStore(self.cache, manifest)}
            keys = manifest["key"].drop_duplicates().to_numpy()
            rng = np.random.default_rng([self.seed, self.epoch, hash_path(shard)])
            size = self.batch_size * self.window
            # blocks by position in the shard, not by where the cache holds the images: the
            # order must not depend on which job or dataset cached a molecule first. In a cache
            # this shard filled, positions follow pack rows, so a block is still one chunk.
            keys = window_shuffle(keys, np.arange(len(keys)) // IMAGE_CHUNK, size, rng)
            for start in range(0, len(keys), size):
                pending = carry + [(shard, k) for k in keys[start : start + size]]
                whole = len(pending) - len(pending) % self.batch_size
                pending, carry = pending[:whole], pending[whole:]
                head = head or pending[: self.batch_size]
                yield from self._batches(pending, stores)
        if carry:
            stores |= {s: FeatureStore(self.cache, read_manifests([s])) for s, _ in head if s not in stores}
            yield from self._batches(carry + head[: self.batch_size - len(carry)], stores)

    def _batches(self, molecules: list[Molecule], stores: dict[str, FeatureStore]) -> Iterator[Batch]:
        """This rank's slices of the whole global batches ``molecules``, read in one go per shard."""
        local = self.batch_size // self.world_size
        slices = rank_slices(np.arange(len(molecules)), local, self.rank, self.world_size)
        mine = [molecules[i] for i in slices]
        read = {}
        for shard in dict.fromkeys(s for s, _ in mine):
            keys = list(dict.fromkeys(k for s, k in mine if s == shard))
            read |= {(shard, k): data for k, data in zip(keys, stores[shard].get(keys), strict=True)}
        for first in range(0, len(mine), local):
            yield Batch.from_data_list([read[m] for m in mine[first : first + local]])


def rank_slices(keys: np.ndarray, local: int, rank: int, world_size: int) -> np.ndarray:
    """Rank ``rank``'s slices of consecutive global batches of ``local * world_size`` keys:
    the ``rank``-th run of ``local`` keys of each, in order (all keys for a single process)."""
    if world_size == 1:
        return keys
    return keys.reshape(-1, world_size, local)[:, rank].reshape(-1)


def shard_molecules(manifest: str) -> int:
    """The number of distinct molecules (keys) a shard's manifest lists; reads only the keys."""
    return pc.count_distinct(pq.read_table(manifest, columns=["key"])["key"]).as_py()


def window_shuffle(keys: np.ndarray, blocks: np.ndarray, window: int, rng: np.random.Generator) -> np.ndarray:
    """A permutation of ``keys``: blocks in random order, then shuffled within each window."""
    block_order = rng.permutation(int(blocks.max()) + 1 if len(blocks) else 0)
    rank = np.argsort(block_order)  # the position of each block in the random order
    ordered = keys[np.argsort(rank[blocks], kind="stable")]
    for start in range(0, len(ordered), window):
        part = ordered[start : start + window]
        ordered[start : start + window] = part[rng.permutation(len(part))]
    return ordered


def hash_path(path: str) -> int:
    """A stable per-shard seed component (the file name, not Python's salted hash)."""
    return stable_int(os.path.basename(path)) % (2**31)


def batch_loader(dataset: ShardBatches, workers: int) -> DataLoader:
    """A loader over whole batches; workers read shards in parallel and prefetch."""
    return DataLoader(
        dataset,
        batch_size=None,
        num_workers=workers,
        persistent_workers=False,
        prefetch_factor=4 if workers else None,
        multiprocessing_context="spawn" if workers else None,
    )
