"""Featurization speed: the pipeline's featurize stage against a bare RDKit loop.

Both do the same work on the same molecules (the first N of the ZINC/MOSES corpus, after
standardization): graph features, ETKDGv3 conformer + MMFF (UFF fallback), Cairo rendering.
The pipeline also writes Zarr/Parquet packs and manifests. Prints a table:

    python benchmarks/featurize.py [--molecules 1000] [--workers 1 2]

Goals: pipeline / bare loop <= 1.10 on one worker; speedup >= 1.8 with two workers.
"""

from __future__ import annotations

import argparse
import io
import logging
import os
import tempfile
import time
from pathlib import Path

import pyarrow.parquet as pq
from _common import table
from PIL import Image
from rdkit import Chem
from rdkit.Chem import rdDistGeom, rdForceFieldHelpers
from rdkit.Chem.Draw import rdMolDraw2D

from mmsa.plan.config import validate_config
from mmsa.stages.featurize import featurize
from mmsa.stages.fetch import fetch
from mmsa.stages.shard import shard
from mmsa.stages.standardize import standardize


def bare_loop(keys: list[str], image_size: int, seed: int) -> None:
    """The same work as the featurizer, as a plain RDKit loop with nothing stored."""
    for key in keys:
        mol = Chem.MolFromSmiles(key)
        atoms = [(a.GetAtomicNum(), int(a.GetChiralTag())) for a in mol.GetAtoms()]
        bonds = [(int(b.GetBondType()), int(b.GetBondDir())) for b in mol.GetBonds()]
        assert atoms is not None and bonds is not None
        mol_h = Chem.AddHs(mol)
        params = rdDistGeom.ETKDGv3()
        params.randomSeed = seed
        params.timeout = 10
        if rdDistGeom.EmbedMolecule(mol_h, params) >= 0:
            if rdForceFieldHelpers.MMFFHasAllMoleculeParams(mol_h):
                rdForceFieldHelpers.MMFFOptimizeMolecule(mol_h, maxIters=500)
            elif rdForceFieldHelpers.UFFHasAllMoleculeParams(mol_h):
                rdForceFieldHelpers.UFFOptimizeMolecule(mol_h, maxIters=500)
        drawer = rdMolDraw2D.MolDraw2DCairo(image_size, image_size)
        rdMolDraw2D.PrepareAndDrawMolecule(drawer, mol)
        drawer.FinishDrawing()
        Image.open(io.BytesIO(drawer.GetDrawingText())).convert("RGB").load()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--molecules", type=int, default=1000, help="ZINC molecules (default 1000)")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="worker counts")
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--cache-dir", default="resources/cache", help="where downloads are cached")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        data = {"max_rows": {"zinc": args.molecules}, "shards": {"zinc": 1}}
        base = {"cache_dir": args.cache_dir, "data": data, "featurize": {"image_size": args.image_size}}
        config = validate_config(base)
        fetch(config, "zinc", work / "raw.parquet")
        standardize(config, "zinc", work / "raw.parquet", work / "std", work / "r1.parquet")
        shard(config, "zinc", work / "std", work / "shards", work / "r2.parquet")
        shard_file = work / "shards" / "shard-00000.parquet"
        keys = pq.read_table(shard_file, columns=["key"]).column("key").to_pylist()

        start = time.perf_counter()
        bare_loop(keys, args.image_size, config["featurize"]["conformer"]["seed"])
        bare = time.perf_counter() - start

        rows = [("bare RDKit loop", 1, bare)]
        for workers in args.workers:
            run_config = validate_config({**base, "cache_dir": str(work / f"cache-{workers}")})
            os.makedirs(run_config["cache_dir"])
            start = time.perf_counter()
            featurize(
                run_config,
                shard_file,
                work / f"m{workers}.parquet",
                work / f"r{workers}.parquet",
                threads=workers,
            )
            rows.append(("mmsa featurize", workers, time.perf_counter() - start))

    one = next((t for name, w, t in rows if name == "mmsa featurize" and w == 1), None)
    print(f"\n{len(keys)} ZINC molecules, image {args.image_size}px, {os.cpu_count()} CPUs\n")
    cells = [
        [
            name,
            workers,
            f"{seconds:.1f}",
            f"{len(keys) / seconds:.1f}",
            f"{seconds / bare:.2f}",
            f"{one / seconds:.2f}" if one and name == "mmsa featurize" else "",
        ]
        for name, workers, seconds in rows
    ]
    print(table(["method", "workers", "seconds", "mol/s", "vs bare loop", "speedup"], cells))


if __name__ == "__main__":
    main()
