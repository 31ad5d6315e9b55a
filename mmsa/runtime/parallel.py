"""Run independent Dask tasks on local worker processes, sized from a job's thread count, or on
an existing ``dask.distributed`` cluster.

RDKit holds the GIL for most of its work, so molecule-level tasks need processes, not threads.
One worker runs synchronously in-process: no pool start-up, so a 1-thread job costs what a
plain loop costs. Given a scheduler address (config key ``dask.scheduler_address``), the same
task graphs run on that cluster instead, through a ``distributed.Client``; the job's thread
count then no longer matters, the cluster's workers do the work. Their results are the same
bytes, so the address decides where a stage runs, never what it writes. The cluster's workers
must import the same ``mmsa`` (same version, on their ``sys.path``) and see the job's files at
the same paths: standardize and shard tasks read and write part files themselves.
``prefetched`` overlaps a producer (a Dask round, a batch reader) with the consumer's work in a
background thread.
"""

from __future__ import annotations

import logging
import multiprocessing
import queue
import threading
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from typing import Any, TypeVar

import dask

log = logging.getLogger(__name__)


@contextmanager
def cluster_client(address: str) -> Iterator[Any]:
    """A ``distributed.Client`` connected to the scheduler at ``address``, the default Dask
    scheduler inside the block (in every thread, so ``prefetched`` rounds use it too).

    Waits until the cluster has at least one worker: a cluster from ``dask-jobqueue`` gets its
    workers only once their batch jobs start, and sizing rounds of tasks needs them. Leaving
    the block closes the client only; the cluster, which is not ours, keeps running.
    """
    try:
        from distributed import Client
    except ImportError as err:  # only this path needs it; local runs work without
        raise ImportError(
            f"dask.scheduler_address is {address!r}, which needs dask.distributed: "
            "pip install 'dask[distributed]' (the version of the installed dask)"
        ) from err
    with Client(address, set_as_default=True) as client:
        if not client.nthreads():
            log.info("waiting for a worker of the Dask cluster at %s", address)
            client.wait_for_workers(1)
        yield client


def cluster_threads(client: Any) -> int:
    """How many tasks the client's cluster runs at once (its workers' threads, at least 1)."""
    return max(1, sum(client.nthreads().values()))


@contextmanager
def dask_workers(workers: int, scheduler_address: str | None = None) -> Iterator[int]:
    """Configure Dask for ``workers`` local processes (synchronous when ``workers <= 1``), or,
    given ``scheduler_address``, for that cluster whatever ``workers`` says.

    Yields how many tasks run at once, so callers size their rounds of tasks to what actually
    runs them (a 1-thread job sending its tasks to a 64-thread cluster must not send 32 at a
    time).
    """
    if scheduler_address:
        with cluster_client(scheduler_address) as client:
            threads = cluster_threads(client)
            log.info("running Dask tasks on the cluster at %s (%d threads)", scheduler_address, threads)
            yield threads
        return
    if workers <= 1:
        with dask.config.set(scheduler="synchronous"):
            yield 1
        return
    context = multiprocessing.get_context("spawn")
    with (
        ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool,
        dask.config.set(scheduler="processes", pool=pool, num_workers=workers),
    ):
        yield workers


def compute(tasks: Sequence[Any], workers: int, scheduler_address: str | None = None) -> list[Any]:
    """Compute Dask ``tasks`` with ``workers`` processes, or on the cluster at
    ``scheduler_address`` when given; results in task order."""
    with dask_workers(workers, scheduler_address):
        return list(dask.compute(*tasks))


T = TypeVar("T")
_DONE = object()


def prefetched(items: Iterable[T], depth: int = 2) -> Iterator[T]:
    """``items`` in order, produced ``depth`` ahead by a background thread.

    The producer runs while the consumer works: Zarr decoding, Arrow, torch kernels and
    waiting on worker processes all release the GIL, so on a CPU with few cores a thread
    overlaps them where more processes would only fight for cores. An error in the producer
    is raised in the consumer; closing the consumer stops the producer.
    """
    slots: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def produce() -> None:
        try:
            for item in items:
                if stop.is_set():
                    return
                slots.put(item)
        except BaseException as err:  # handed to the consumer, which re-raises it
            slots.put(err)
        slots.put(_DONE)

    thread = threading.Thread(target=produce, daemon=True, name="mmsa-prefetch")
    thread.start()
    try:
        while (item := slots.get()) is not _DONE:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        while thread.is_alive():  # unblock a producer waiting on a full queue
            try:
                slots.get_nowait()
            except queue.Empty:
                thread.join(timeout=0.01)
