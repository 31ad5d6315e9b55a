"""3D encoder cost: SchNet against ComENet, forward + backward on one batch of ZINC molecules.

The molecules are the first ``--molecules`` of the ZINC/MOSES corpus with 22-28 heavy atoms, with
the featurizer's conformers (ETKDGv3 + MMFF). Each encoder embeds the batch and backpropagates a
scalar of its output. The encoders take turns, one step each per round, so that load from other
work on the machine hits them alike; the table gives the fastest and the median of ``--repeats``
rounds after one warm-up round, the parameter count, and the largest change of any embedding
when every conformer is rotated (it should be float noise). ``--flush-denormal`` sets
``torch.set_flush_denormal``: SchNet's far Gaussians (exp of -12.5 d^2) include subnormal floats,
which slow CPU matrix products several-fold. Prints a table:

    python benchmarks/geometry_encoders.py [--molecules 64] [--threads 2] [--repeats 10] [--flush-denormal]
"""

from __future__ import annotations

import argparse
import logging
import statistics
import tempfile
import time
from pathlib import Path

import pyarrow.parquet as pq
import torch
from _common import table
from rdkit import Chem

from mmsa.features.conformer import ConformerOptions, generate_conformer
from mmsa.models import ComENetEncoder, ConformerEncoder, SchNetEncoder
from mmsa.plan.config import validate_config
from mmsa.stages.fetch import fetch

ENCODERS = {
    "SchNet 64/64 x3 (CPU default)": lambda: SchNetEncoder(64, 64, 3, cutoff=10.0),
    "ComENet 64/64 x3, cutoff 10": lambda: ComENetEncoder(64, 64, 3, cutoff=10.0),
    "ComENet 64/64 x3, cutoff 8": lambda: ComENetEncoder(64, 64, 3, cutoff=8.0),
    "ComENet defaults 256/64 x4, cutoff 8": lambda: ComENetEncoder(),
}


def zinc_batch(count: int, cache_dir: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Atomic numbers, heavy-atom coordinates and molecule ids of ``count`` ZINC molecules."""
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "raw.parquet"
        config = validate_config({"cache_dir": cache_dir, "data": {"max_rows": {"zinc": 20 * count}}})
        fetch(config, "zinc", raw)
        smiles = pq.read_table(raw, columns=["smiles"]).column("smiles").to_pylist()
    z, pos, batch = [], [], []
    for key in smiles:
        mol = Chem.MolFromSmiles(key)
        if mol is None or not 22 <= mol.GetNumAtoms() <= 28:
            continue
        conformer = generate_conformer(mol, ConformerOptions())
        if not conformer.ok:
            continue
        z.append(torch.tensor([atom.GetAtomicNum() for atom in mol.GetAtoms()]))
        pos.append(torch.as_tensor(conformer.coords))
        batch.append(torch.full((mol.GetNumAtoms(),), len(batch)))
        if len(batch) == count:
            break
    return torch.cat(z), torch.cat(pos), torch.cat(batch)


def step(encoder: ConformerEncoder, z: torch.Tensor, pos: torch.Tensor, batch: torch.Tensor) -> float:
    start = time.perf_counter()
    encoder.zero_grad()
    encoder(z, pos, batch).square().mean().backward()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--molecules", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--flush-denormal", action="store_true", help="flush subnormal floats to zero")
    parser.add_argument("--cache-dir", default="resources/cache", help="where downloads are cached")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    torch.set_num_threads(args.threads)
    torch.set_flush_denormal(args.flush_denormal)
    z, pos, batch = zinc_batch(args.molecules, args.cache_dir)
    graphs = int(batch.max()) + 1
    flush = ", subnormals flushed" if args.flush_denormal else ""
    print(f"\n{graphs} ZINC molecules, {z.numel() / graphs:.1f} heavy atoms, {args.threads} threads{flush}\n")
    torch.manual_seed(0)
    encoders = {name: build() for name, build in ENCODERS.items()}
    times: dict[str, list[float]] = {name: [] for name in encoders}
    for _ in range(args.repeats + 1):
        for name, encoder in encoders.items():
            times[name].append(step(encoder, z, pos, batch))
    q, _ = torch.linalg.qr(torch.randn(3, 3, generator=torch.Generator().manual_seed(0)))
    rotated = pos @ (q * torch.linalg.det(q)).t() + torch.tensor([3.0, -1.0, 2.0])
    cells = []
    for name, encoder in encoders.items():
        params = sum(p.numel() for p in encoder.parameters())
        edges = encoder.interaction_graph(pos, batch)[0].size(1)
        with torch.no_grad():
            error = float((encoder(z, rotated, batch) - encoder(z, pos, batch)).abs().max())
        best, median = 1000 * min(times[name][1:]), 1000 * statistics.median(times[name][1:])
        cells.append([name, f"{params:,}", edges, f"{best:.0f}", f"{median:.0f}", f"{error:.1e}"])
    print(table(["encoder", "parameters", "edges", "best ms", "median ms", "rotation error"], cells))


if __name__ == "__main__":
    main()
