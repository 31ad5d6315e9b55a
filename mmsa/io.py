"""Crash-safe output: every file or store is written under a temporary name, then renamed.

A killed job therefore leaves either the complete old output, the complete new output, or a
``.tmp-*`` leftover that no reader ever opens, never a half-written file under the final name.
"""

from __future__ import annotations

import csv
import io
import os
import shutil
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


@contextmanager
def atomic_path(path: str | os.PathLike, *, overwrite: bool = True) -> Iterator[Path]:
    """Yield a temporary sibling of ``path``; rename it onto ``path`` when the block succeeds.

    Works for files and directories (Zarr stores). With ``overwrite=False`` an existing
    ``path`` is kept and the new copy is discarded, which is right for content-addressed
    outputs that two processes may produce at the same time with identical content.
    """
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = _tmp_sibling(final)
    try:
        yield tmp
        if final.exists() and not overwrite:
            return
        if final.is_dir() and tmp.is_dir():
            shutil.rmtree(final)
        os.replace(tmp, final)
    finally:
        if tmp.is_dir():
            shutil.rmtree(tmp, ignore_errors=True)
        elif tmp.exists():
            tmp.unlink()


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
