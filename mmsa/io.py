"""Crash-safe output: every file or store is written under a temporary name, then renamed.

A killed job therefore leaves under the final name the complete old output, the complete new
output, or (replacing a folder, between two renames) nothing, plus perhaps ``.tmp-*`` leftovers
that no reader ever opens; never a half-written file or a half-deleted folder.
"""

from __future__ import annotations

import io
import os
import shutil
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq


def _tmp_sibling(path: Path) -> Path:
    return path.with_name(f".tmp-{path.name}-{os.getpid()}-{uuid.uuid4().hex[:8]}")


@contextmanager
def atomic_path(path: str | os.PathLike, *, overwrite: bool = True) -> Iterator[Path]:
    """Yield a temporary sibling of ``path``; rename it onto ``path`` when the block succeeds.

    Works for files and directories (Zarr stores). With ``overwrite=False`` an existing
    ``path`` is kept and the new copy is discarded, which is right for content-addressed
    outputs that two processes may produce at the same time with identical content. An old
    folder is renamed aside before it is deleted, so a kill never leaves part of it in place.
    """
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = _tmp_sibling(final)
    retired = None
    try:
        yield tmp
        if final.exists() and not overwrite:
            return
        if final.is_dir() and tmp.is_dir():
            retired = _tmp_sibling(final)
            os.replace(final, retired)
        try:
            os.replace(tmp, final)
        except OSError:
            if retired is not None:
                os.replace(retired, final)
                retired = None
            # another process renamed its identical folder into place since the check above
            if overwrite or not final.exists():
                raise
    finally:
        for leftover in (tmp, retired):
            if leftover is not None and leftover.is_dir():
                shutil.rmtree(leftover, ignore_errors=True)
            elif leftover is not None and leftover.exists():
                leftover.unlink()


def _newest_change(path: Path) -> float:
    """The latest modification time of ``path`` or of anything under it."""
    newest = path.lstat().st_mtime
    for folder, dirs, files in os.walk(path):
        for name in dirs + files:
            try:
                newest = max(newest, os.lstat(os.path.join(folder, name)).st_mtime)
            except FileNotFoundError:  # its writer is moving things right now
                newest = time.time()
    return newest


def remove_stale_temporaries(folder: str | os.PathLike, max_age_s: float) -> list[Path]:
    """Delete the ``.tmp-*`` entries of ``folder`` that nothing under has changed for ``max_age_s``.

    They are what :func:`atomic_path` leaves when its process is killed. Another process may
    be writing one right now; the caller picks an age that a live writer never reaches between
    two writes. Returns what was removed.
    """
    removed = []
    now = time.time()
    for entry in Path(folder).glob(".tmp-*"):
        try:
            if now - _newest_change(entry) < max_age_s:
                continue
        except FileNotFoundError:  # renamed into place or removed by its owner meanwhile
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)
        removed.append(entry)
    return removed


def write_parquet(table: pa.Table, path: str | os.PathLike) -> None:
    """Write ``table`` to ``path`` atomically."""
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp)


def write_text(text: str, path: str | os.PathLike) -> None:
    """Write ``text`` to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def write_bytes(data: bytes, path: str | os.PathLike) -> None:
    """Write ``data`` to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def save_torch(obj: object, path: str | os.PathLike) -> None:
    """``torch.save`` ``obj`` to ``path`` atomically, with the same bytes for the same content.

    ``torch.save`` to a file names the archive's inner folder after the file, which would be
    the random temporary name; serializing to memory first keeps the bytes independent of it,
    so identical weights give identical files (and file hashes).
    """
    import torch

    buffer = io.BytesIO()
    torch.save(obj, buffer)
    write_bytes(buffer.getvalue(), path)
