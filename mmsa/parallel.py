"""Run independent Dask tasks on local worker processes, sized from a job's thread count.

RDKit holds the GIL for most of its work, so molecule-level tasks need processes, not threads.
One worker runs synchronously in-process: no pool start-up, so a 1-thread job costs what a
plain loop costs. The same task graphs run unchanged on a ``dask.distributed`` cluster when a
client is active (Dask then ignores the local scheduler chosen here). ``prefetched`` overlaps a
producer (a Dask round, a batch reader) with the consumer's work in a background thread.
"""

from __future__ import annotations

import multiprocessing
import queue
import threading
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from typing import Any, TypeVar

import dask


@contextmanager
def dask_workers(workers: int) -> Iterator[None]:
    """Configure Dask for ``workers`` local processes (synchronous when ``workers <= 1``)."""
    if workers <= 1:
        with dask.config.set(scheduler="synchronous"):
            yield
        return
    context = multiprocessing.get_context("spawn")
    with (
        ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool,
        dask.config.set(scheduler="processes", pool=pool, num_workers=workers),
    ):
        yield


def compute(tasks: Sequence[Any], workers: int) -> list[Any]:
    """Compute Dask ``tasks`` with ``workers`` processes; results in task order."""
    with dask_workers(workers):
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
