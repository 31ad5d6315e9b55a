"""Run independent Dask tasks on local worker processes, sized from a job's thread count.

RDKit holds the GIL for most of its work, so molecule-level tasks need processes, not threads.
One worker runs synchronously in-process: no pool start-up, so a 1-thread job costs what a
plain loop costs. The same task graphs run unchanged on a ``dask.distributed`` cluster when a
client is active (Dask then ignores the local scheduler chosen here).
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from typing import Any

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
