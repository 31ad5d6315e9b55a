"""Stable hashes: the same input gives the same number on every machine and every run.

Python's built-in ``hash()`` of a string is salted per process, so it must never decide
which shard a molecule lands in or which cache entry it matches.
"""

from __future__ import annotations

import hashlib
import json
import os
from functools import cache
from pathlib import Path
from typing import Any


def stable_int(text: str) -> int:
    """A 64-bit integer derived from ``text`` by BLAKE2b (stable across processes)."""
    return int.from_bytes(hashlib.blake2b(text.encode("utf-8"), digest_size=8).digest(), "big")


def shard_of(key: str, n_shards: int) -> int:
    """The shard a molecule key belongs to among ``n_shards``."""
    return stable_int(key) % n_shards


def settings_digest(settings: Any, length: int = 16) -> str:
    """Hex digest of JSON-serialisable settings (key order does not matter)."""
    blob = json.dumps(settings, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:length]


def sha256_file(path: str | os.PathLike, block: int = 1 << 20) -> str:
    """SHA-256 of a file's bytes, read in blocks so large archives need little memory."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(block):
            digest.update(chunk)
    return digest.hexdigest()


@cache
def code_digest() -> str:
    """SHA-256 over the mmsa package's Python sources (path and bytes, in path order).

    A checkpoint records it, so a run never resumes training with other code than the code that
    wrote the checkpoint (a git commit would miss uncommitted edits and installed copies).
    """
    package = Path(__file__).resolve().parent.parent  # mmsa/, not this module's runtime/
    digest = hashlib.sha256()
    for path in sorted(package.rglob("*.py")):
        digest.update(path.relative_to(package).as_posix().encode("utf-8") + b"\0")
        digest.update(path.read_bytes())
    return digest.hexdigest()
