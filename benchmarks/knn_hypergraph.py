"""kNN hypergraph at a million molecules: mmsa's ``knn_hyperedges`` against faiss's exact index.

The hypergraph stage (``mmsa/stages/hypergraph.py``) builds each split's hypergraph with
``knn_hyperedges(train, k, chunk_rows=CENTRE_BLOCK)`` (``k`` neighbours, ``k + 1`` members):
cosine similarity, exact. Here it runs on
``--rows`` 256-dimensional embeddings with each backend, beside faiss's exact flat index
(``IndexFlatIP`` on L2-normalized rows, which is cosine similarity) used directly. Each method
runs in its own subprocess, so its peak memory (``VmHWM``, minus the process's peak once the
data is loaded) is its own. Prints a Markdown table:

    python benchmarks/knn_hypergraph.py [--rows 1000000] [--queries 4096] [--k 11]

The embeddings are real: the frozen fused embedding of every molecule in ``--embeddings`` (the
``embed`` stage's output), with the graph embedding beside it in outputs written before the
graph column was dropped (the committed run: 128 + 128). To reach ``--rows`` they are
repeated, each copy with seeded Gaussian noise of ``--noise`` times each dimension's standard
deviation (so copies are near, not equal, to their source and ties are rare). All N x N
similarities would take hours on 2 cores, so the first ``--queries`` rows are the hyperedge
centres, searched against all rows (``num_centres``), and the time for every row is that time
x rows / queries (the search is a sum over independent centres; the fixed costs, normalizing
and indexing the rows, are small and are counted in full in the measured part).
Goal: mmsa <= 1.2 x faiss's time.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import torch
from _common import high_water_mark, machine, mib, table

from mmsa.models.knn_hypergraph import knn_hyperedges
from mmsa.stages.hypergraph import CENTRE_BLOCK

METHODS = {
    "torch": "mmsa knn_hyperedges, torch backend (chunk_rows=2048, as the hypergraph stage)",
    "faiss-mmsa": "mmsa knn_hyperedges, faiss backend (auto when faiss is installed)",
    "faiss": "faiss IndexFlatIP, bare (normalize + add + search)",
}


def embeddings(pattern: str, rows: int, noise: float, seed: int = 0) -> np.ndarray:
    """Real embeddings, repeated with seeded noise to ``rows``.

    The fused embedding of each molecule (the paper config's 256 dimensions), with the graph
    embedding beside it where the file has one (embed outputs before the graph column was
    dropped: the committed table used the default config's 128 + 128).
    """
    parts = []
    for path in sorted(glob.glob(pattern)):
        names = [c for c in ("fused", "graph") if c in pq.read_schema(path).names]
        t = pq.read_table(path, columns=names)
        parts.append(np.concatenate([np.stack(t.column(c).to_numpy(zero_copy_only=False)) for c in names], 1))
    if not parts:
        raise SystemExit(f"no embeddings match {pattern!r}: run the embed stage or pass --embeddings")
    real = np.concatenate(parts).astype(np.float32)
    scale = noise * real.std(axis=0, keepdims=True)
    rng = np.random.default_rng(seed)
    out = np.empty((rows, real.shape[1]), dtype=np.float32)
    for start in range(0, rows, len(real)):
        block = real[: min(len(real), rows - start)]
        jitter = rng.standard_normal(block.shape, dtype=np.float32) * scale if start else 0.0
        out[start : start + len(block)] = block + jitter  # the first copy is the real embeddings
    return out


def run_method(method: str, x: np.ndarray, queries: int, k: int) -> np.ndarray:
    """(queries, k) neighbour ids, centre first, from ``method``."""
    if method == "faiss":
        import faiss

        z = x.copy()
        faiss.normalize_L2(z)
        index = faiss.IndexFlatIP(z.shape[1])
        index.add(z)
        return index.search(z[:queries], k)[1]
    backend = "torch" if method == "torch" else "faiss"
    hyperedges = knn_hyperedges(
        torch.from_numpy(x), k - 1, num_centres=queries, chunk_rows=CENTRE_BLOCK, backend=backend
    )
    return hyperedges[0].view(queries, k).numpy()


def measure(args: argparse.Namespace) -> dict:
    """One method in this process: seconds and peak memory over the loaded data."""
    x = embeddings(args.embeddings, args.rows, args.noise)
    loaded = high_water_mark(os.getpid()) or 0
    start = time.perf_counter()
    nodes = run_method(args.one, x, args.queries, args.k)
    seconds = time.perf_counter() - start
    np.save(args.out, nodes)
    peak = high_water_mark(os.getpid()) or 0
    return {"method": args.one, "seconds": seconds, "extra_peak": peak - loaded}


def overlap(a: np.ndarray, b: np.ndarray) -> float:
    """Mean share of each centre's neighbours that two methods agree on."""
    return float(np.mean([len(set(p) & set(q)) / len(p) for p, q in zip(a, b, strict=True)]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="embeddings (default 1,000,000)")
    parser.add_argument("--queries", type=int, default=4096, help="centres measured (default 4096)")
    parser.add_argument("--k", type=int, default=11, help="nodes per hyperedge (finetune k 10, + centre)")
    parser.add_argument("--noise", type=float, default=0.1, help="noise of the copies, x per-dim std")
    parser.add_argument("--embeddings", default="results/embeddings/*.parquet", help="embed stage outputs")
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS))
    parser.add_argument("--threads", type=int, default=2, help="torch and faiss threads (default 2)")
    parser.add_argument("--one", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.one:
        import faiss

        faiss.omp_set_num_threads(args.threads)
        print(json.dumps(measure(args)))
        return

    results, neighbours = [], {}
    with tempfile.TemporaryDirectory() as tmp:
        for method in args.methods:
            out = str(Path(tmp) / f"{method}.npy")
            command = [sys.executable, __file__, *sys.argv[1:], "--one", method, "--out", out]
            done = subprocess.run(command, check=True, capture_output=True, text=True)
            results.append(json.loads(done.stdout.strip().splitlines()[-1]))
            neighbours[method] = np.load(out)
            print(f"done: {results[-1]}", file=sys.stderr, flush=True)
    faiss_s = next((r["seconds"] for r in results if r["method"] == "faiss"), None)
    reference = neighbours.get("faiss", neighbours[results[0]["method"]])
    scale = args.rows / args.queries
    rows = [
        [
            METHODS[r["method"]],
            f"{r['seconds']:.1f}",
            f"{r['seconds'] * scale / 60:.0f}",
            f"{r['seconds'] / faiss_s:.2f}" if faiss_s else "",
            mib(r["extra_peak"]),
            f"{overlap(neighbours[r['method']], reference):.4f}",
        ]
        for r in results
    ]
    print(
        f"\n{args.rows:,} x 256 float32 embeddings (real fused + graph embeddings of "
        f"{args.embeddings!r}, repeated with {args.noise} x std noise), k = {args.k}, cosine; "
        f"{args.queries:,} centres measured against all rows, {args.threads} threads"
    )
    print(f"Machine: {machine()}\n")
    header = [
        "method",
        f"s ({args.queries:,} centres)",
        f"min, all {args.rows:,} (extrapolated)",
        "x faiss",
        "peak MiB over data",
        "neighbours as faiss",
    ]
    print(table(header, rows))


if __name__ == "__main__":
    main()
