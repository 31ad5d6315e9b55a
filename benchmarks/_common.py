"""Helpers shared by the scaling benchmarks: peak memory of a process tree, a feature cache that
reuses downloads only, and Markdown tables.

Peak memory is the kernel's high-water mark (``VmHWM`` in ``/proc/<pid>/status``), read for this
process and every descendant while they run: sampling RSS would miss short spikes between
samples, the high-water mark cannot. A descendant's last reading is the one taken before it
exited, so a spike in its final sampling interval (``interval`` seconds) can be missed; the
interval is short next to a featurize round. Linux only (``/proc``); psutil (a dependency of
``dask.distributed``) finds the descendants.
"""

from __future__ import annotations

import os
import platform
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import pandas as pd
import psutil

from mmsa.runtime.kernels import cpu_flags
from mmsa.runtime.tables import markdown_table

MIB = 1 << 20


def high_water_mark(pid: int) -> int | None:
    """Peak resident memory of ``pid`` in bytes (``VmHWM``), or None once it has exited."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    return None


class PeakMemory:
    """Peak RSS of this process and of each descendant process seen while the block runs.

    ``main`` is this process's peak; ``children`` maps each descendant's pid to its
    (command name, peak). The main peak is the process's lifetime high-water mark: measure
    each size in a fresh process (the scaling benchmarks run one size per subprocess) so that
    an earlier, larger run does not set it.
    """

    def __init__(self, interval: float = 0.05) -> None:
        self.interval = interval
        self.main = 0
        self.children: dict[int, tuple[str, int]] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="peak-memory")

    def _poll(self) -> None:
        me = psutil.Process()
        self.main = max(self.main, high_water_mark(me.pid) or 0)
        mine = me.cmdline()
        for child in me.children(recursive=True):
            try:
                before = child.cmdline()
                peak = high_water_mark(child.pid)
                after = child.cmdline()
            except psutil.Error:
                continue
            # Between fork (vfork) and exec a new child still runs in this process's memory and
            # reports this process's high-water mark: only readings taken after its exec count.
            if peak is None or mine in (before, after):
                continue
            name = " ".join(after[-2:]) or child.name()
            old = self.children.get(child.pid, (name, 0))
            self.children[child.pid] = (old[0], max(old[1], peak))

    def _run(self) -> None:
        while not self._stop.is_set():
            self._poll()
            time.sleep(self.interval)

    def __enter__(self) -> PeakMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._poll()

    def worker_peaks(self, skip: Sequence[str] = ("resource_tracker",)) -> list[int]:
        """Peaks of the descendants that do work (multiprocessing's resource tracker left out)."""
        return [peak for name, peak in self.children.values() if not any(s in name for s in skip)]


@contextmanager
def fresh_cache(root: str | os.PathLike, downloads: str | os.PathLike | None) -> Iterator[str]:
    """A new, empty ``cache_dir`` under ``root`` that shares only ``downloads`` (when it exists)
    with an existing cache: raw downloads are reused, no features are."""
    cache = Path(root) / "cache"
    cache.mkdir(parents=True)
    if downloads and Path(downloads).is_dir():
        (cache / "downloads").symlink_to(Path(downloads).resolve(), target_is_directory=True)
    yield str(cache)


def machine() -> str:
    """One line on where the numbers were measured, with the load when they were printed (what
    else ran beside a benchmark is for its results file to say: the load only hints at it)."""
    mem = psutil.virtual_memory().total / (1 << 30)
    load = ", ".join(f"{v:.1f}" for v in os.getloadavg())
    found = cpu_flags()
    model = found[0] if found else platform.processor() or platform.machine()
    avx512 = " with AVX-512" if found and "avx512f" in found[1] else ""
    return (
        f"{os.cpu_count()} CPUs ({model}{avx512}), {mem:.0f} GiB RAM; "
        f"load average at the end {load} (1, 5, 15 min)"
    )


def table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A Markdown table (:func:`mmsa.runtime.tables.markdown_table`); the first column
    left-aligned, the others right-aligned."""
    return markdown_table(
        pd.DataFrame([list(r) for r in rows], columns=list(header), dtype=object), header[1:]
    ).rstrip("\n")


def mib(nbytes: float) -> str:
    return f"{nbytes / MIB:,.0f}"
