"""Pretraining and finetuning speed by ``cpu_kernels`` setting: what pinning the float kernels costs.

Featurizes the first ``--molecules`` molecules of a SMILES CSV (any real molecules: the
committed run used the development machine's shared Tox21 file) with config/default.yaml's
features, once, then pretrains config/default.yaml's model on them for ``--epochs`` epochs
under each setting, each in a fresh process (the kernel variables must be set before torch is
imported), ``torch_threads`` 2 as in the default job; ``--repeats`` rounds over the settings in
turn, so that a change in the machine's load hits every setting alike. Prints a Markdown table:
molecules per second (the stage's own ``throughput.json``, which excludes start-up; median and
range over the rounds), the training's CPU time per molecule (all threads; less disturbed than
wall time by other jobs on a shared machine) and its ratio to ``native``, the kernels torch ran
and the weights' hashes; then the seconds per epoch of finetuning ``no-pretrain`` (the GIN the
neural models share) on the same molecules for ``--finetune-epochs`` epochs on one thread, as
the workflow's finetuning jobs run:

    PYTHONPATH=$PWD python benchmarks/cpu_kernels.py --smiles FILE.csv [--molecules 256] [--epochs 2]

Goal: know the speed that ``cpu_kernels: avx2`` (the default) gives up against the machine's
own choice, and that ``default`` (no SIMD) costs.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
from _common import machine, table

from mmsa.plan.config import deep_merge, load_config, validate_config
from mmsa.runtime.kernels import CHOICES
from mmsa.stages.data_stages import run_data_stages

REPO = Path(__file__).resolve().parent.parent
RUN = textwrap.dedent(
    """
    import json, sys, time
    from mmsa.runtime.kernels import kernel_provenance, pin_cpu_kernels
    pin_cpu_kernels(sys.argv[4])
    from mmsa.runtime.reproducible import configure_torch
    from mmsa.stages.finetune import finetune
    from mmsa.stages.pretrain import pretrain
    from mmsa.stages.split import split
    config, manifests, out = json.loads(sys.argv[1]), json.loads(sys.argv[2]), sys.argv[3]
    configure_torch(config["torch_threads"])
    cpu = time.process_time()
    pretrain(config, manifests, out, out + "/checkpoint.pt")
    cpu = time.process_time() - cpu
    configure_torch(1)  # a finetuning job's one thread
    shards = sys.argv[5]
    split(config, "bench", shards, manifests, out + "/split.parquet", out + "/split.json")
    ft = [out + "/ft-" + part for part in ("seed.json", "seed.parquet", "seed.pt")]
    started = time.perf_counter()
    finetune(config, "bench", "no-pretrain", shards, manifests, out + "/split.parquet", *([p] for p in ft))
    finetune_s = time.perf_counter() - started
    print(json.dumps({**kernel_provenance(), "cpu_seconds": cpu, "finetune_seconds": finetune_s}))
    """
)


def corpus(smiles_csv: Path, molecules: int, folder: Path) -> tuple[dict, list[str]]:
    """The default config on a local dataset of the CSV's first rows (labels alternate 0, 1 so
    that finetuning has two classes), and its manifests."""
    rows = pd.read_csv(smiles_csv, usecols=["smiles"]).head(molecules)
    rows["y"] = range(len(rows))
    rows["y"] %= 2
    rows.to_csv(folder / "bench.csv", index=False)
    custom = {"source": "local", "smiles_column": "smiles", "task_type": "classification"}
    custom["tasks"] = {"y": "y"}
    overrides = {
        "cache_dir": str(folder / "cache"),
        "data": {"local_dir": str(folder), "custom": {"bench": custom}},
        "finetune": {"datasets": ["bench"]},
    }
    config = load_config(REPO / "config" / "default.yaml", overrides)
    run_data_stages(config, "bench", folder / "bench", threads=2)
    return config, sorted(str(p) for p in (folder / "bench").glob("man-*.parquet"))


def run(config: dict, manifests: list[str], setting: str, out: Path) -> dict:
    """One pretraining and one finetuning under ``setting`` in a new process: throughput,
    finetuning seconds per epoch and kernels."""
    shards = str(Path(manifests[0]).parent / "shards")
    done = subprocess.run(
        [sys.executable, "-c", RUN, json.dumps(config), json.dumps(manifests), str(out), setting, shards],
        capture_output=True,
        text=True,
        check=True,
    )
    throughput = json.loads((out / "throughput.json").read_text())
    kernels = json.loads(done.stdout.strip().splitlines()[-1])
    return {
        "cpu_kernels": setting,
        "capability": kernels["capability"],
        "steps": throughput["steps"],
        "molecules/s": throughput["molecules_per_second"],
        "cpu ms/molecule": 1000 * kernels["cpu_seconds"] / throughput["molecules"],
        "model.pt": hashlib.sha256((out / "model.pt").read_bytes()).hexdigest()[:12],
        "finetune s/epoch": kernels["finetune_seconds"] / config["finetune"]["settings"]["epochs"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smiles", type=Path, required=True, help="CSV with a smiles column")
    parser.add_argument("--molecules", type=int, default=256)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--finetune-epochs", type=int, default=5)
    settings = ["native", "avx512", "avx2", "default"]
    parser.add_argument("--settings", nargs="+", default=settings, choices=CHOICES)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        config, manifests = corpus(args.smiles, args.molecules, Path(tmp))
        config = validate_config(
            deep_merge(
                config,
                {
                    "pretrain": {"settings": {"epochs": args.epochs}},
                    "finetune": {"seeds": 1, "settings": {"epochs": args.finetune_epochs}},
                },
            )
        )
        runs = [
            run(config, manifests, s, Path(tmp) / f"{s}-{i}")
            for i in range(args.repeats)
            for s in args.settings
        ]
    rows = []
    for setting in args.settings:
        mine = [r for r in runs if r["cpu_kernels"] == setting]
        speeds = sorted(r["molecules/s"] for r in mine)
        cpu = float(np.median([r["cpu ms/molecule"] for r in mine]))
        hashes = sorted({r["model.pt"] for r in mine})
        per_epoch = float(np.median([r["finetune s/epoch"] for r in mine]))
        rows.append(
            {
                **{k: mine[0][k] for k in ("cpu_kernels", "capability", "steps")},
                "molecules/s (median)": float(np.median(speeds)),
                "range": f"{speeds[0]}-{speeds[-1]}",
                "cpu ms/molecule (median)": round(cpu, 1),
                "model.pt": ", ".join(hashes),
                "finetune s/epoch (median)": round(per_epoch, 3),
            }
        )
    native = {r["cpu_kernels"]: r["cpu ms/molecule (median)"] for r in rows}.get("native")
    for r in rows:  # CPU time, less disturbed than wall time by other jobs on a shared machine
        r["cpu time vs native"] = f"{r['cpu ms/molecule (median)'] / native:.2f}" if native else ""
    settings = config["pretrain"]["settings"]
    print(
        f"Pretraining config/default.yaml's model (batch {settings['batch_size']}, {args.epochs} epochs, "
        f"torch_threads {config['torch_threads']}) on the first {args.molecules} molecules of "
        f"{args.smiles.name}, then finetuning no-pretrain on them ({args.finetune_epochs} epochs, "
        f"1 thread), each setting in a fresh process, {args.repeats} rounds\n{machine()}\n"
    )
    print(table(list(rows[0]), [list(r.values()) for r in rows]))


if __name__ == "__main__":
    main()
