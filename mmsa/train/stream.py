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
from mmsa.hashing import stable_int


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
        drop_last: bool = True,
        window: int = 8,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        if batch_size % world_size:
            raise ValueError(f"batch_size {batch_size} is not divisible by the {world_size} processes")
        if world_size > 1 and not drop_last:
            raise ValueError("a batch split between processes must be whole: use drop_last")
        self.rank, self.world_size = rank, world_size
        self.manifests = [str(m) for m in manifests]
        self.cache = cache
        self.batch_size = batch_size
        self.window = window
        self.seed = seed
        self.drop_last = drop_last
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Choose the epoch whose order the next iteration follows."""
        self.epoch = epoch

    def batches_per_epoch(self, workers: int = 0) -> int:
        """How many batches one epoch yields (shards are split between loader workers).

        Counts what :meth:`__iter__` visits: each shard's distinct molecules, not its rows (with
        ``data.dedupe: false`` a shard lists a molecule once per dataset row).
        """
        total = 0
        for part in self._partition(max(1, workers)):
            for m in part:
                n = shard_molecules(m)
                total += n // self.batch_size if self.drop_last else -(-n // self.batch_size)
        return total

    def _partition(self, workers: int) -> list[list[str]]:
        order = np.random.default_rng([self.seed, self.epoch]).permutation(len(self.manifests))
        shards = [self.manifests[i] for i in order]
        return [shards[w::workers] for w in range(workers)]

    def __iter__(self) -> Iterator[Batch]:
        info = get_worker_info()
        workers, worker = (info.num_workers, info.id) if info else (1, 0)
        for shard in self._partition(workers)[worker]:
            manifest = read_manifests([shard])
            store = FeatureStore(self.cache, manifest)
            keys = manifest["key"].drop_duplicates().to_numpy()
            rng = np.random.default_rng([self.seed, self.epoch, hash_path(shard)])
            size = self.batch_size * self.window
            # blocks by position in the shard, not by where the cache holds the images: the
            # order must not depend on which job or dataset cached a molecule first. In a cache
            # this shard filled, positions follow pack rows, so a block is still one chunk.
            keys = window_shuffle(keys, np.arange(len(keys)) // IMAGE_CHUNK, size, rng)
            stop = len(keys) - len(keys) % self.batch_size if self.drop_last else len(keys)
            local = self.batch_size // self.world_size
            for start in range(0, stop, size):
                mine = rank_slices(keys[start : min(stop, start + size)], local, self.rank, self.world_size)
                molecules = store.get(list(mine))
                for first in range(0, len(molecules), local):
                    yield Batch.from_data_list(molecules[first : first + local])


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
