"""The tables one data stage hands the next, read with a check.

In the workflow each stage reads what the previous rule wrote. Run by hand (``mmsa standardize
--raw``, ``mmsa shard --standardized`` and ``--holdout``, ``mmsa featurize SHARD``), a stage can
be handed the wrong file: a missing path, a CSV, another stage's table, an empty folder. Each then
says in one line what it got and which stage's output it expected, instead of pyarrow's
traceback; and a hold-out folder that names no molecules is an error, never an empty hold-out
that would let finetuning molecules into pretraining.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from mmsa.data.columns import ROW, SMILES
from mmsa.runtime.errors import InputError

RAW = "a raw table from `mmsa fetch`"
STANDARDIZED = "a standardized folder from `mmsa standardize` (part-*.parquet files)"
SHARD = "a shard file from `mmsa shard` (shard-*.parquet)"
RAW_COLUMNS = (ROW, SMILES)
KEYED_COLUMNS = (ROW, "input", "key")  # what standardize writes and shard and featurize read


class StageInputError(InputError):
    """A stage was handed a file or folder that is not the previous stage's output."""


def checked_table(path: str | os.PathLike, columns: Sequence[str], expected: str) -> Path:
    """``path`` if it is a Parquet table with ``columns``; otherwise a :class:`StageInputError`
    naming what it is and what was ``expected``."""
    path = Path(path)
    if not path.exists():
        raise StageInputError(f"{path}: no such file; expected {expected}")
    if path.is_dir():
        raise StageInputError(f"{path}: a folder; expected {expected}")
    try:
        schema = pq.read_schema(path)
    except (pa.ArrowException, OSError) as err:
        reason = str(err).split(". ")[0][:160]
        raise StageInputError(f"{path}: not a Parquet table ({reason}); expected {expected}") from None
    missing = [c for c in columns if c not in schema.names]
    if missing:
        raise StageInputError(f"{path}: no column {', '.join(missing)}; expected {expected}")
    return path


def standardized_parts(folder: str | os.PathLike, what: str = "") -> list[Path]:
    """The part files of a standardized folder, in order, each checked; a folder that is missing
    or holds none is a :class:`StageInputError` (``what`` names the option that gave it)."""
    folder = Path(folder)
    named = f"{what} {folder}" if what else str(folder)
    if not folder.is_dir():
        state = "not a folder" if folder.exists() else "no such folder"
        raise StageInputError(f"{named}: {state}; expected {STANDARDIZED}")
    parts = sorted(folder.glob("part-*.parquet"))
    if not parts:
        raise StageInputError(f"{named}: holds no part-*.parquet files; expected {STANDARDIZED}")
    return [checked_table(part, KEYED_COLUMNS, STANDARDIZED) for part in parts]
