"""Time and peak memory of the hypergraph stage's work (``split_hypergraphs``) at a given size.

    PYTHONPATH=$PWD python benchmarks/hypergraph_stage.py --rows 93087 [--k 10] [--dim 256]

One seed's 80/10/10 random split of ``--rows`` synthetic fused embeddings (``--dim`` floats, drawn
around 64 centres so that neighbourhoods exist), the default ``finetune.neighbours``: the
training hypergraph and the neighbour similarities of every part, as the stage computes them.
Prints one table row; run it from a checkout of another commit (its ``PYTHONPATH``) to compare.

``--centres C`` measures a size too large to search whole on a small machine (1M rows: an exact
search of every row is over an hour on 2 cores): the stage's own searches run for the first ``C``
and ``2C`` molecules of each part against all training molecules, and the time is projected to
every molecule along the line through the two (exact kNN costs the same per query row; see
:func:`sampled_searches`). The peak is the sampled run's;
a whole run adds its outputs (the incidence, similarities and key table of every training
molecule), printed beside it from their sizes. Commits before 513fdd2 computed the training
molecules' similarities again in torch (``neighbour_cosine(..., exclude_self=True)``): the script
runs what the checkout has.
"""

from __future__ import annotations

import argparse
import inspect
import os
import subprocess
import time

import numpy as np
import pandas as pd
import torch
from _common import PeakMemory, high_water_mark, machine, mib, table

from mmsa.models.knn_hypergraph import faiss_available, knn_hyperedges
from mmsa.stages.hypergraph import CENTRE_BLOCK, neighbour_cosine, split_hypergraphs


def embeddings(rows: int, dim: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((64, dim)).astype(np.float32)
    return centres[rng.integers(0, 64, rows)] + 0.5 * rng.standard_normal((rows, dim)).astype(np.float32)


def _search(x: torch.Tensor, train: torch.Tensor, part: str, c: int, k: int, recompute: bool) -> np.ndarray:
    """The stage's search for the first ``c`` molecules of ``part`` (rows ``x``): the training
    hypergraph's (and, before 513fdd2, the training similarities again in torch), or a held-out
    part's; their mean neighbour similarity."""
    if part == "train" and recompute:
        knn_hyperedges(train, k, num_centres=c, chunk_rows=CENTRE_BLOCK)
        return neighbour_cosine(train[:c], train, k, exclude_self=True)
    if part == "train":
        _, own = knn_hyperedges(train, k, num_centres=c, chunk_rows=CENTRE_BLOCK, with_similarity=True)
        return own[:, 1:].mean(1).numpy()
    if recompute:
        return neighbour_cosine(x[:c], train, k, exclude_self=False)
    return neighbour_cosine(x[:c], train, k)


def sampled_searches(fused: np.ndarray, part: np.ndarray, k: int, centres: int) -> tuple[float, float, dict]:
    """The stage's searches for the first ``centres`` and ``2 * centres`` molecules of each part
    against every training molecule: seconds measured, seconds projected for every molecule, and
    the mean similarity per part.

    Two sizes, because each search also has a cost that does not grow with its queries
    (normalizing and indexing every training molecule): the projection is the line through the
    two timings, t(n) = t(c) + (t(2c) - t(c)) / c * (n - c), not t(c) * n / c, which would count
    that cost n / c times. A part of at most 2c molecules is searched whole, not projected.
    """
    x = torch.tensor(fused)
    train = x[torch.from_numpy(part == "train")]
    recompute = "exclude_self" in inspect.signature(neighbour_cosine).parameters  # before 513fdd2
    measured = projected = 0.0
    coverage = {}
    for p in ("train", "valid", "test"):
        rows = x[torch.from_numpy(part == p)]
        n = len(rows)
        sizes = [min(centres, n), min(2 * centres, n)]
        seconds = []
        for c in sizes:
            started = time.perf_counter()
            similarity = _search(rows, train, p, c, k, recompute)
            seconds.append(time.perf_counter() - started)
        measured += sum(seconds)
        slope = (seconds[1] - seconds[0]) / (sizes[1] - sizes[0]) if sizes[1] > sizes[0] else 0.0
        projected += seconds[1] + slope * (n - sizes[1])
        coverage[p] = round(float(similarity.mean()), 4)
    return measured, projected, coverage


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=93_087, help="molecules (default 93,087: MUV)")
    parser.add_argument("--k", type=int, default=10, help="neighbours per hyperedge (default 10)")
    parser.add_argument("--dim", type=int, default=256, help="embedding size (default 256, the paper's)")
    parser.add_argument(
        "--centres",
        type=int,
        help="search the first CENTRES and 2 x CENTRES molecules of each part and project the time",
    )
    args = parser.parse_args()
    torch.set_num_threads(2)
    fused = embeddings(args.rows, args.dim)
    keys = [f"m{i:07d}" for i in range(args.rows)]
    part = np.random.default_rng(1).choice(["train", "valid", "test"], size=args.rows, p=[0.8, 0.1, 0.1])
    splits = pd.DataFrame({"seed": 0, "key": keys, "part": part})
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    ).stdout.strip()
    before = high_water_mark(os.getpid()) or 0  # the embeddings and the split are already held
    with PeakMemory() as peak:
        if args.centres:
            measured, seconds, coverage = sampled_searches(fused, part, args.k, args.centres)
        else:
            started = time.perf_counter()
            _, stats = split_hypergraphs(keys, fused, splits, args.k)
            seconds = measured = time.perf_counter() - started
            coverage = stats["0"]["neighbour_cosine_by_part"]
    over = peak.main - before
    n_train = int((part == "train").sum())
    # a whole run's outputs, per member of a hyperedge (k + 1 per training molecule): two int64 ids
    # and a float32 similarity from the search, then a seed and two key references in the table
    outputs = n_train * (args.k + 1) * (8 + 8 + 4 + 8 + 8 + 8)
    print(machine())
    print(
        table(
            [
                "commit",
                "rows",
                "k",
                "faiss",
                "centres searched per part (then twice as many)",
                "seconds measured",
                "seconds for every molecule",
                "peak MiB over the inputs",
                "neighbour cosine (train / valid / test)",
            ],
            [
                [
                    commit,
                    f"{args.rows:,}",
                    args.k,
                    faiss_available(),
                    f"{args.centres:,}" if args.centres else "all",
                    f"{measured:.1f}",
                    f"{seconds:.1f}" + (" (projected)" if args.centres else ""),
                    mib(over),
                    " / ".join(str(coverage[p]) for p in ("train", "valid", "test")),
                ]
            ],
        )
    )
    print(f"(process peak {mib(peak.main)} MiB; before the stage {mib(before)} MiB)")
    if args.centres:
        print(f"(a whole run also holds its outputs: {mib(outputs)} MiB: incidence, similarities, key table)")


if __name__ == "__main__":
    main()
