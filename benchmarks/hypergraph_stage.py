"""Time and peak memory of the hypergraph stage's work (``split_hypergraphs``) at a given size.

    PYTHONPATH=$PWD python benchmarks/hypergraph_stage.py --rows 93087 [--k 10] [--dim 256]

One seed's 80/10/10 random split of ``--rows`` synthetic fused embeddings (``--dim`` floats, drawn
around 64 centres so that neighbourhoods exist), the default ``finetune.hypergraph_k``: the
training hypergraph and the neighbour similarities of every part, as the stage computes them.
Prints one table row; run it from a checkout of another commit (its ``PYTHONPATH``) to compare.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import time

import numpy as np
import pandas as pd
import torch
from _common import PeakMemory, high_water_mark, machine, mib, table

from mmsa.models.hypergraph import faiss_available
from mmsa.stages.hypergraph import split_hypergraphs


def embeddings(rows: int, dim: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((64, dim)).astype(np.float32)
    return centres[rng.integers(0, 64, rows)] + 0.5 * rng.standard_normal((rows, dim)).astype(np.float32)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=93_087, help="molecules (default 93,087: MUV)")
    parser.add_argument("--k", type=int, default=10, help="neighbours per hyperedge (default 10)")
    parser.add_argument("--dim", type=int, default=256, help="embedding size (default 256, the paper's)")
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
        started = time.perf_counter()
        _, stats = split_hypergraphs(keys, fused, splits, args.k)
        seconds = time.perf_counter() - started
    over = peak.main - before
    print(machine())
    print(
        table(
            [
                "commit",
                "rows",
                "k",
                "faiss",
                "seconds",
                "peak MiB over the inputs",
                "neighbour cosine (train / valid / test)",
            ],
            [
                [
                    commit,
                    f"{args.rows:,}",
                    args.k,
                    faiss_available(),
                    f"{seconds:.1f}",
                    mib(over),
                    " / ".join(
                        str(stats["0"]["neighbour_cosine_by_part"][p]) for p in ("train", "valid", "test")
                    ),
                ]
            ],
        )
    )
    print(f"(process peak {mib(peak.main)} MiB; before the stage {mib(before)} MiB)")


if __name__ == "__main__":
    main()
