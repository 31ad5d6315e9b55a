"""Read a dataset's CSV text and write it, unchanged but for column selection and the row limit,
to Parquet: the one CSV reader of the project (pipeline datasets and the files given to
``mmsa embed`` and ``mmsa predict`` alike).

The source is opened by :mod:`mmsa.data.table_source` (downloads by :mod:`mmsa.data.download`),
its text reaches the csv module through :mod:`mmsa.data.csv_lines` (no over-long cell held
whole), the header's columns are chosen by :mod:`mmsa.data.csv_header`, and the rows are chosen
by :mod:`mmsa.data.sampling`, block by block. All label cells stay
strings here: :mod:`mmsa.data.standardized_molecules` converts them and sends unreadable ones to the
rejects table.
"""

from __future__ import annotations

import csv
import errno
import gzip
import io
import json
import logging
import os
import stat
import zlib
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import replace
from pathlib import Path
from typing import IO

import pyarrow as pa
import pyarrow.parquet as pq

from mmsa.data.columns import FETCH_ERROR, ROW, SOURCE_ROW
from mmsa.data.csv_header import select_columns
from mmsa.data.csv_lines import BoundedLines, ClippedField
from mmsa.data.download import FetchError
from mmsa.data.registry import DatasetSpec
from mmsa.data.row_limit import RowLimit, limit_provenance
from mmsa.data.sampling import chosen_blocks
from mmsa.data.table_source import csv_digest, decompressed, open_table, verify_csv_checksum
from mmsa.runtime.io import atomic_path

log = logging.getLogger(__name__)

MAX_FIELD_CHARS = 131_072
"""The longest SMILES or label cell read: the csv module's default ``field_size_limit``. A row
with a longer cell is rejected with the reason instead of aborting the whole table (as the csv
module would); :class:`~mmsa.data.csv_lines.BoundedLines` cuts such a cell while it streams by, so
that it costs no more memory than a cell at the limit, and the record still ends where it should."""
_CLIPPED = 80  # characters of an over-long cell kept in the table, to identify the row


def _cell(record: list[str], position: int) -> str:
    """A field of a CSV record; a short (ragged) record reads as empty fields."""
    return record[position] if position < len(record) else ""


def _fields(n: int) -> str:
    return f"{n} field" if n == 1 else f"{n} fields"


def _shape_error(fields: int, width: int, smiles_at: int, smiles: str) -> str | None:
    """Why a record of ``fields`` fields under a header of ``width`` columns cannot be read, if
    it cannot.

    More fields than the header: one cell was cut in two (a comma inside an unquoted cell, as
    in a name), so which field is the SMILES cannot be told and the row is rejected, not read
    with its cells shifted. Fewer fields: the missing cells are trailing empty cells, as some
    writers leave them out, and read as empty (a missing label); a record too short to hold the
    SMILES cell is rejected with that reason rather than as an empty SMILES.
    """
    if fields > width:
        return f"{_fields(fields)} under a {width}-column header: a comma inside an unquoted cell?"
    if fields <= smiles_at:
        return f"{_fields(fields)} under a {width}-column header: no {smiles} cell"
    return None


class _CountingReader:
    """A CSV reader that counts the data records it has yielded (blank lines are no records) and
    turns a quoting error into a :class:`FetchError` naming the line where the broken record
    starts.

    The reader is strict: a quote that never closes would otherwise swallow every later line
    into one field (one rejected row standing for many lost ones), and a quote that closes in
    the middle of a field would silently join lines. A quoted field holding a line break is
    valid CSV and stays one record. A field that ``lines`` cut (longer than
    :data:`MAX_FIELD_CHARS`) comes as a :class:`~mmsa.data.csv_lines.ClippedField`.
    """

    def __init__(self, reader: Iterator[list[str]], lines: BoundedLines, what: str, line: int) -> None:
        self.reader, self.lines, self.records, self.what, self.line = reader, lines, 0, what, line

    def __iter__(self) -> _CountingReader:
        return self

    def __next__(self) -> list[str]:
        try:
            record = next(self.reader)
        except csv.Error as err:
            raise quoting_error(self.what, self.line + 1, err) from None
        self.records += bool(record)
        self.line = self.reader.line_num  # type: ignore[attr-defined]
        for position, length in self.lines.clipped.items():
            record[position] = ClippedField(record[position], length)
        return record


def quoting_error(what: str, line: int, err: csv.Error) -> FetchError:
    """The error for a record the strict CSV reader refused, starting at ``line`` (1-based)."""
    return FetchError(
        f"{what}: line {line}: a quoted field opens there and is not closed properly ({err}); no row "
        'was read. Close the quote, or write a quote inside a quoted field as two ("")'
    )


def _check_rows(spec: DatasetSpec, where: str, found: int, first: int | None) -> None:
    """An error if the table has another number of data rows than ``spec.expected_rows``.

    A download cut off where no Content-Length could tell, or another version of the file,
    would otherwise go on as a silently smaller dataset (and be pinned as if it were right).
    Where only the ``first`` rows are read, only too few rows can be told.
    """
    expected = spec.expected_rows
    if expected is None:
        return
    if first is None and found != expected:
        raise FetchError(f"dataset {spec.name}: {found} data rows, expected {expected}, in {where}")
    if first is not None and found < min(expected, first):
        raise FetchError(
            f"dataset {spec.name}: {found} data rows, expected {expected} (at least the first {first}), "
            f"in {where}"
        )


def _block_columns(
    block: list[list[str]], positions: list[int], names: list[str], width: int
) -> tuple[list[list[str]], list[str | None]]:
    """The selected cells of ``block`` column by column, and each record's fetch error.

    A record with another number of fields than the header's ``width`` may get an error
    (:func:`_shape_error`); a cell that was cut (over :data:`MAX_FIELD_CHARS`) is clipped further
    (what is left identifies the row) and its record gets an error naming the column. Either
    way the row ends in the rejects table, with the reason.
    """
    errors = [_shape_error(len(r), width, positions[0], names[0]) for r in block]
    columns = [[_cell(r, i) for r in block] for i in positions]
    for name, cells in zip(names, columns, strict=True):
        for j, cell in enumerate(cells):
            if isinstance(cell, ClippedField):
                errors[j] = errors[j] or (
                    f"{name} field of {cell.length:,} characters is longer than the CSV field limit "
                    f"of {MAX_FIELD_CHARS:,}"
                )
                cells[j] = cell[:_CLIPPED] + "..."
    return columns, errors


def fetch_dataset(
    spec: DatasetSpec,
    out_path: str | os.PathLike,
    cache_dir: str | os.PathLike,
    local_dir: str | os.PathLike | None = None,
    limit: RowLimit | None = None,
    block_rows: int = 50_000,
) -> int:
    """Write the dataset's rows to ``out_path`` (Parquet); return the number of rows.

    Columns: ``row`` (0-based, numbering the written rows), ``smiles``, one string column per
    task and ``fetch_error``: why the row could not be read (a cell over
    :data:`MAX_FIELD_CHARS`), null for rows that could; standardization rejects those rows
    with that reason. ``limit`` keeps the first rows only, or a uniform random sample of rows
    in source order (:class:`~mmsa.data.row_limit.RowLimit`); a sample adds a ``source_row``
    column, each row's number in the unsampled table (0-based data records, blank lines not
    counted), so that a molecule can be traced back to the source file. Provenance goes into the
    Parquet metadata.
    """
    cache_dir = Path(cache_dir)
    local = Path(local_dir) if local_dir else None
    if spec.source == "local" and (spec.package or spec.url):
        return _fetch_own_copy(spec, out_path, cache_dir, local, limit, block_rows)
    verify_csv_checksum(spec, cache_dir, local)
    with open_table(spec, cache_dir, local) as (stream, where):
        return write_raw_table(stream, spec, out_path, f"dataset {spec.name}", limit, block_rows, where)


def _fetch_own_copy(
    spec: DatasetSpec,
    out_path: str | os.PathLike,
    cache_dir: Path,
    local: Path | None,
    limit: RowLimit | None,
    block_rows: int,
) -> int:
    """A registry dataset read from the user's own file (``data.sources: {name: local}``).

    The file is theirs to choose: MoleculeNet's own ``clintox.csv`` has 1,478 rows where the
    registry's copy has 1,484, and refusing it for that stopped the run. Its SHA-256 and row
    count are recorded in the raw table's provenance instead, and one line says how it differs
    from the registry's copy (the registry's checksum and count are not enforced on it)."""
    own = replace(spec, csv_sha256=None, expected_rows=None)
    digest = csv_digest(own, cache_dir, local)
    with open_table(own, cache_dir, local) as (stream, where):
        rows = write_raw_table(
            stream,
            own,
            out_path,
            f"dataset {spec.name}",
            limit,
            block_rows,
            where,
            {"local_csv_sha256": digest},
        )
    differ = []
    if spec.csv_sha256 and digest != spec.csv_sha256:
        differ.append(f"CSV SHA-256 {digest[:12]}..., the registry's {spec.csv_sha256[:12]}...")
    if spec.expected_rows and limit is None and rows != spec.expected_rows:
        differ.append(f"{rows:,} data rows, the registry's copy {spec.expected_rows:,}")
    if differ:
        log.warning(
            "dataset %s: your file %s differs from the registry's copy (%s); read as it is",
            spec.name,
            where,
            "; ".join(differ),
        )
    return rows


def write_raw_table(
    stream: IO[bytes],
    spec: DatasetSpec,
    out_path: str | os.PathLike,
    what: str,
    limit: RowLimit | None = None,
    block_rows: int = 50_000,
    where: str = "",
    provenance: dict[str, str] | None = None,
    smiles_option: str | None = None,
) -> int:
    """Write the CSV text of ``stream`` as the fetched table of ``spec`` (see :func:`fetch_dataset`);
    ``provenance`` adds to what its metadata records.

    The one CSV reader of the project: pipeline datasets and the files given to ``mmsa embed``
    and ``mmsa predict`` are read alike. ``what`` names the table in errors (a dataset or a
    file); a table without a header, its SMILES column or any data row is an error, because no
    row of it could be accounted for, and so is another row count than the spec's
    ``expected_rows`` (``where`` names the file read, for that error). ``smiles_option``: how
    the caller lets the user name the SMILES column, for the hint of a header that nearly has it
    (:func:`~mmsa.data.csv_header.select_columns`).
    """
    try:
        return _write_raw_table(
            stream, spec, out_path, what, limit, block_rows, where, provenance or {}, smiles_option
        )
    except (gzip.BadGzipFile, EOFError, zlib.error) as err:
        raise FetchError(f"{what}: not a readable gzip file ({err})") from None


def _write_raw_table(
    stream: IO[bytes],
    spec: DatasetSpec,
    out_path: str | os.PathLike,
    what: str,
    limit: RowLimit | None,
    block_rows: int,
    where: str,
    extra: dict[str, str],
    smiles_option: str | None,
) -> int:
    rows = 0
    with atomic_path(out_path) as tmp:
        # Python's csv module: correct quoting, no reader threads, and stopping early at the
        # first rows is just leaving the loop.
        # Undecodable bytes become U+FFFD, outside the SMILES alphabet, so such a row is
        # rejected with a reason instead of aborting the whole dataset.
        text = io.TextIOWrapper(stream, encoding="utf-8-sig", errors="replace", newline="")
        lines = BoundedLines(text, MAX_FIELD_CHARS)
        records = csv.reader(lines, strict=True)
        named = f"{what}, {where}" if where else what  # a quoting error names the file's line
        try:
            header = next(records, [])
        except csv.Error as err:
            raise quoting_error(named, 1, err) from None
        reader = _CountingReader(records, lines, named, records.line_num)
        columns = select_columns(spec, header, what, smiles_option)
        positions = [header.index(src) for src in columns.values()]
        numbers = [ROW, SOURCE_ROW] if limit and limit.how == "sample" else [ROW]
        strings = [*columns, FETCH_ERROR]
        schema = pa.schema([(n, pa.int64()) for n in numbers] + [(name, pa.string()) for name in strings])
        provenance = {**spec.to_dict(), **limit_provenance(limit), **extra}
        schema = schema.with_metadata({"mmsa.source": json.dumps(provenance)})
        with pq.ParquetWriter(tmp, schema) as writer:
            for block, sources in chosen_blocks(reader, block_rows, limit):
                arrays = [pa.array(range(rows, rows + len(block)), pa.int64())]
                if sources is not None:
                    arrays.append(pa.array(sources, pa.int64()))
                cells, errors = _block_columns(block, positions, list(columns.values()), len(header))
                arrays += [pa.array(c, pa.string()) for c in [*cells, errors]]
                writer.write_batch(pa.record_batch(arrays, schema=schema))
                rows += len(block)
        if rows == 0:
            raise FetchError(f"{what}: no data rows after the header")
        _check_rows(spec, where or what, reader.records, limit.first if limit else None)
    log.info("fetched %s: %d rows, %d tasks -> %s", what, rows, len(columns) - 1, out_path)
    return rows


def fetch_file(
    path: str | os.PathLike, spec: DatasetSpec, out_path: str | os.PathLike, smiles_option: str | None = None
) -> int:
    """A user's SMILES file (CSV, or gzipped CSV) as the fetched table of ``spec`` (``smiles_option``:
    see :func:`write_raw_table`)."""
    path = readable_file(path)
    with ExitStack() as stack:
        stream = decompressed(stack, stack.enter_context(open(path, "rb")))
        return write_raw_table(stream, spec, out_path, str(path), smiles_option=smiles_option)


def readable_file(path: str | os.PathLike) -> Path:
    """``path`` if it is a regular file with content; otherwise a :class:`FetchError` saying what
    it is (missing, a folder or device, a link that loops, an empty file), checked before any
    work (``mmsa embed`` and ``mmsa predict`` check it before torch is imported)."""
    path = Path(path)
    try:
        status = path.stat()
    except OSError as err:
        reason = "no such file" if err.errno == errno.ENOENT else (err.strerror or str(err)).lower()
        raise FetchError(f"{path}: {reason}") from None
    if not stat.S_ISREG(status.st_mode):
        raise FetchError(f"{path}: not a file")
    if status.st_size == 0:
        raise FetchError(f"{path}: empty file (no header line)")
    return path
