"""Crash-safe output: every file or store is written under a temporary name, then renamed.

A killed job therefore leaves either the complete old output, the complete new output, or a
``.tmp-*`` leftover that no reader ever opens, never a half-written file under the final name
(a folder killed between its two renames leaves no output, and the old one under a ``.tmp-*``
name, so the job simply runs again).

Two kinds of target, two publishing rules:

* a rule's output (``overwrite=True``) is replaced by a new version; a folder is renamed aside
  before the new one is renamed in, so the final name never holds a half-deleted folder;
* a shared cache entry whose name is derived from its content (``overwrite=False``: a download
  keyed by its hash, a feature pack) is published once: the first complete copy is renamed into
  place and kept, a later or concurrent copy is discarded, and nothing ever deletes the entry
  that another process may be reading.
"""

from __future__ import annotations

import csv
import io
import os
import shutil
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.parquet as pq

if TYPE_CHECKING:
    import pandas as pd


def _tmp_sibling(path: Path) -> Path:
    return path.with_name(f".tmp-{path.name}-{os.getpid()}-{uuid.uuid4().hex[:8]}")


def _remove(path: Path) -> None:
    """Delete a file or folder of this process's own (a temporary name), if it is there."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    elif os.path.lexists(path):
        path.unlink()


def _replace(tmp: Path, final: Path) -> None:
    """Rename ``tmp`` onto ``final``; an old folder is first renamed aside, then deleted.

    ``os.replace`` cannot replace a non-empty folder, and deleting the old folder in place
    would leave a half-deleted folder under the final name if the job died meanwhile.
    """
    if tmp.is_dir() and final.is_dir() and not final.is_symlink():
        old = _tmp_sibling(final)
        os.rename(final, old)
        os.rename(tmp, final)
        _remove(old)
    else:
        os.replace(tmp, final)


def _publish_once(tmp: Path, final: Path) -> None:
    """Rename ``tmp`` to ``final`` unless ``final`` exists (an empty folder counts as absent).

    The check and the rename are one atomic step, so of several processes publishing the same
    entry at once exactly one wins and the others find a complete ``final`` and use it. A
    folder is renamed (POSIX refuses to rename onto a non-empty folder); a file is hard-linked
    (``link`` refuses an existing name, where ``rename`` would replace it). On a file system
    without hard links a file falls back to check-then-replace: a loser may then replace the
    winner's file, atomically, which is harmless for content-addressed entries.
    """
    if tmp.is_dir():
        try:
            os.rename(tmp, final)
        except OSError:
            if not os.path.lexists(final):
                raise
        return
    try:
        os.link(tmp, final)
    except FileExistsError:
        pass
    except OSError:  # no hard links here (some network or FUSE file systems)
        if not os.path.lexists(final):
            os.replace(tmp, final)


@contextmanager
def atomic_path(path: str | os.PathLike, *, overwrite: bool = True) -> Iterator[Path]:
    """Yield a temporary sibling of ``path``; rename it onto ``path`` when the block succeeds.

    Works for files and directories (Zarr stores). With ``overwrite=False`` an existing
    ``path`` is kept and the new copy is discarded (see :func:`_publish_once`), which is right
    for content-addressed outputs that two processes may produce at the same time with
    identical content; such a ``path`` is never deleted, even for a moment.
    """
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = _tmp_sibling(final)
    try:
        yield tmp
        if overwrite:
            _replace(tmp, final)
        else:
            _publish_once(tmp, final)
    finally:
        _remove(tmp)


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


def existing_folder(path: str | os.PathLike) -> Path:
    """``path`` or its nearest ancestor that exists (absolute): where a file under ``path`` would
    land, for checking that folder's space and permissions before anything is written."""
    folder = Path(path).absolute()
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    return folder


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


def write_csv(frame: pd.DataFrame, path: str | os.PathLike) -> None:
    """Write ``frame`` to ``path`` as CSV atomically, every text cell quoted.

    With lines ending in "\n" the csv module leaves a cell holding a bare carriage return
    unquoted, and every reader then splits that record in two; rejected inputs can hold one.
    """
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, index=False, quoting=csv.QUOTE_NONNUMERIC)


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
