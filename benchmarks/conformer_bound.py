"""Conformer generation per molecule: CPU time, outcome and the slowest molecules; and the feature
cache's bytes alone and beside busy processes.

For each standardized molecule of the given shards (``results/datasets/<d>/shards/*.parquet``),
:func:`generate_conformer` with the config's conformer settings, in ``--workers`` processes,
each molecule timed in CPU seconds of its thread. Prints, per dataset: molecules, conformers
made, failures by reason, CPU seconds in all and the slowest; then the ``--slowest`` molecules.
A molecule that stops the job (``ConformerTimeout``) is counted as such. The script imports
``mmsa`` from ``PYTHONPATH``, so the same command measures an older checkout.

With ``--load-check N``, the first N molecules of the first shard are featurized twice through
the pipeline's ``compute_pack`` into fresh caches, once alone and once beside ``--hogs`` busy
processes, and the SHA-256 of every file of the two packs is compared: the features must not
depend on how busy the machine is.

    PYTHONPATH=$PWD python benchmarks/conformer_bound.py \
        --shard results/datasets/corpus/shards/shard-00000.parquet \
        --shard results/datasets/clintox/shards/shard-00000.parquet [--load-check 800]
"""

from __future__ import annotations

import argparse
import hashlib
import multiprocessing
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pandas as pd
from _common import machine, table

from mmsa.plan.config import load_config

REPO = Path(__file__).resolve().parent.parent


def reason(detail: str) -> str:
    """The outcome's class: the force field used, or the failure's first words."""
    if detail in ("mmff", "uff", "etkdg") or detail.startswith("etkdg"):
        return "conformer"
    return detail.split(":")[0].split(" (")[0]


def time_one(job: tuple[str, str, dict[str, Any]]) -> dict[str, Any]:
    """One molecule's conformer: CPU seconds of this thread and the outcome."""
    from rdkit import Chem

    from mmsa.features import conformer

    dataset, key, options = job
    mol = Chem.MolFromSmiles(key)
    started = time.thread_time()
    try:
        detail = conformer.generate_conformer(mol, conformer.ConformerOptions.from_dict(options)).detail
    except getattr(conformer, "ConformerTimeout", ()) as err:
        detail = f"job stopped (ConformerTimeout): {err}"
    return {
        "dataset": dataset,
        "key": key,
        "heavy atoms": mol.GetNumAtoms(),
        "cpu s": time.thread_time() - started,
        "outcome": reason(detail),
    }


def per_molecule(shards: list[Path], options: dict[str, Any], workers: int) -> pd.DataFrame:
    jobs = [(p.parent.parent.name, k, options) for p in shards for k in pd.read_parquet(p)["key"]]
    with multiprocessing.Pool(workers) as pool:
        return pd.DataFrame(pool.map(time_one, jobs, chunksize=4))


def summary(rows: pd.DataFrame) -> str:
    lines = []
    for dataset, part in rows.groupby("dataset", sort=False):
        outcomes = Counter(part["outcome"])
        failures = "; ".join(f"{k} {v}" for k, v in sorted(outcomes.items()) if k != "conformer") or "none"
        cpu = part["cpu s"]
        lines.append(
            [dataset, len(part), outcomes["conformer"], failures, f"{cpu.sum():.0f}", f"{cpu.median():.3f}"]
            + [f"{cpu.quantile(0.99):.2f}", f"{cpu.max():.2f}"]
        )
    header = ["dataset", "molecules", "conformers", "failures", "cpu s", "median", "p99", "max"]
    return table(header, lines)


def slowest(rows: pd.DataFrame, n: int) -> str:
    top = rows.sort_values("cpu s", ascending=False).head(n)
    cells = [
        [r["dataset"], r["heavy atoms"], f"{r['cpu s']:.2f}", r["outcome"], f"`{r['key']}`"]
        for _, r in top.iterrows()
    ]
    return table(["dataset", "heavy atoms", "cpu s", "outcome", "molecule"], cells)


def pack_digests(config: dict[str, Any], keys: list[str], folder: Path) -> tuple[str, float]:
    """Featurize ``keys`` into a fresh cache: one digest over every pack file, and the wall time."""
    from mmsa.features.cache import FeatureCache
    from mmsa.features.settings import FeatureSettings
    from mmsa.features.shard_featurizer import compute_pack

    cache = FeatureCache(folder, FeatureSettings.from_dict(config["featurize"]))
    started = time.perf_counter()
    name, _ = compute_pack(cache, keys, workers=2, chunk_size=config["featurize"]["chunk_size"])
    wall = time.perf_counter() - started
    h = hashlib.sha256()
    for path in sorted(p for p in cache.pack_path(name).rglob("*") if p.is_file()):
        h.update(str(path.relative_to(folder)).encode() + path.read_bytes())
    return h.hexdigest()[:16], wall


def load_check(config: dict[str, Any], keys: list[str], hogs: int) -> str:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        alone = pack_digests(config, keys, Path(tmp) / "alone")
        busy = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(hogs)]
        try:
            loaded = pack_digests(config, keys, Path(tmp) / "loaded")
        finally:
            for process in busy:
                process.kill()
                process.wait()
    rows = [["alone", alone[0], f"{alone[1]:.0f}"], [f"beside {hogs} busy processes", *loaded[:1]]]
    rows[1].append(f"{loaded[1]:.0f}")
    verdict = "equal" if alone[0] == loaded[0] else "DIFFERENT"
    return f"{table(['run', 'pack files sha256', 'wall s'], rows)}\n\nPacks {verdict}."


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shard", type=Path, action="append", required=True, help="a shard Parquet")
    parser.add_argument("--config", type=Path, default=REPO / "config/default.yaml")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--slowest", type=int, default=10)
    parser.add_argument("--load-check", type=int, default=0, help="molecules for the load check (0: none)")
    parser.add_argument("--hogs", type=int, default=4, help="busy processes beside the loaded run")
    args = parser.parse_args()
    config = load_config(args.config)
    options = config["featurize"]["conformer"]
    rows = per_molecule(args.shard, options, args.workers)
    print(f"Conformer generation with {options}\n{machine()}\n")
    print(summary(rows) + "\n")
    print(f"The {args.slowest} slowest molecules (CPU seconds of their thread):\n")
    print(slowest(rows, args.slowest))
    if args.load_check:
        keys = pd.read_parquet(args.shard[0])["key"].head(args.load_check).tolist()
        print(f"\nThe first {len(keys)} molecules of {args.shard[0]}, featurized twice:\n")
        print(load_check(config, keys, args.hogs))


if __name__ == "__main__":
    main()
