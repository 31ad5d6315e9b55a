"""The rows a :class:`~mmsa.data.row_limit.RowLimit` keeps, chosen from a stream of CSV records.

The table is read in blocks, so a corpus of millions of rows never sits in memory whole, not even
when a random sample of it is taken.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

import numpy as np

from mmsa.data.row_limit import RowLimit

log = logging.getLogger(__name__)


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


def uniform_sample(
    blocks: Iterator[list[list[str]]], size: int, seed: int | None
) -> tuple[list[int], list[list[str]]]:
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


def chosen_blocks(
    reader: Iterator[list[str]], size: int, limit: RowLimit | None
) -> Iterator[tuple[list[list[str]], list[int] | None]]:
    """The records ``limit`` keeps (every one when None) in blocks of ``size``, with their source
    row numbers when sampled."""
    blocks = _blocks(reader, size, limit.first if limit else None)
    if limit is None or limit.how == "first":
        for block in blocks:
            yield block, None
        return
    sources, records = uniform_sample(blocks, limit.n, limit.seed)
    for start in range(0, len(records), size):
        yield records[start : start + size], sources[start : start + size]
