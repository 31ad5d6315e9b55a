"""Chunk-aware shuffling of the pretraining stream and the background prefetcher it uses."""

import threading

import numpy as np
import pytest

from mmsa.runtime.parallel import prefetched
from mmsa.train.stream import rank_slices, window_shuffle


def test_window_shuffle_is_a_permutation_whose_windows_span_few_chunks():
    keys = np.array([f"m{i}" for i in range(100)])
    blocks = np.arange(100) // 10  # ten image chunks of ten molecules
    out = window_shuffle(keys, blocks, window=20, rng=np.random.default_rng(0))
    assert sorted(out) == sorted(keys)
    chunk_of = dict(zip(keys, blocks, strict=True))
    for start in range(0, 100, 20):
        assert len({chunk_of[k] for k in out[start : start + 20]}) == 2  # two whole chunks per window
    again = window_shuffle(keys, blocks, window=20, rng=np.random.default_rng(0))
    other = window_shuffle(keys, blocks, window=20, rng=np.random.default_rng(1))
    assert list(out) == list(again) and list(out) != list(other)
    assert list(out[:20]) != sorted(out[:20], key=lambda k: int(k[1:]))  # shuffled inside a window


def test_rank_slices_of_global_batches_reassemble_them_in_rank_order():
    keys = np.arange(24)  # three global batches of 8
    slices = [rank_slices(keys, 2, rank, 4) for rank in range(4)]
    assert [list(s) for s in slices[:2]] == [[0, 1, 8, 9, 16, 17], [2, 3, 10, 11, 18, 19]]
    batches = [np.concatenate([s[b * 2 : b * 2 + 2] for s in slices]) for b in range(3)]
    assert np.array_equal(np.concatenate(batches), keys)
    assert list(rank_slices(keys[:5], 5, 0, 1)) == list(range(5))  # one process: all, a partial batch too


def test_window_shuffle_of_nothing_is_nothing():
    empty = np.array([], dtype=object)
    assert len(window_shuffle(empty, np.array([], dtype=np.int64), 8, np.random.default_rng(0))) == 0


def test_prefetched_keeps_order_and_raises_the_producers_error():
    assert list(prefetched(range(50), depth=3)) == list(range(50))

    def failing():
        yield from range(3)
        raise ValueError("bad shard")

    seen = []
    with pytest.raises(ValueError, match="bad shard"):
        for item in prefetched(failing()):
            seen.append(item)
    assert seen == [0, 1, 2]


def test_prefetched_stops_its_thread_when_the_consumer_stops_early():
    stream = prefetched(iter(range(10_000)), depth=2)
    assert next(stream) == 0
    stream.close()
    assert not any(t.name == "mmsa-prefetch" and t.is_alive() for t in threading.enumerate())
