"""Digests of every float step from SMILES to pretrained weights, to find where two CPUs part ways.

Prints one SHA-256 prefix per step (:mod:`mmsa.stages.kernel_fingerprints`): the featurized
views, single torch kernels, the model's forward and backward, and a short fixed pretraining.
Run it on two machines and compare the tables (``benchmarks/results/kernel_fingerprints/``): the
first row that differs names the library (RDKit/cairo for features, MKL for sgemm and vector
maths, oneDNN for the convolution, ATen for the rest). With ``--reference`` it also says which
rows differ from a committed JSON and exits 1 if any does.

    PYTHONPATH=$PWD python benchmarks/kernel_fingerprints.py [--cpu-kernels default] [--json out.json]
        [--reference tests/train/kernel_fingerprints.json]
"""

from __future__ import annotations

import argparse
import json
import platform
from pathlib import Path

from mmsa.runtime.kernels import CHOICES, CpuKernelsError, cpu_flags, pin_cpu_kernels

REPO = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cpu-kernels", choices=CHOICES, default=None, help="default: the config's")
    parser.add_argument("--config", type=Path, default=REPO / "config/default.yaml")
    parser.add_argument("--json", type=Path, help="also write the digests here")
    parser.add_argument("--reference", type=Path, help="a JSON written by --json to compare with")
    args = parser.parse_args()
    from mmsa.plan.config import load_config

    config = load_config(args.config)
    setting = args.cpu_kernels or config["cpu_kernels"]
    try:
        pin_cpu_kernels(setting)  # before torch is imported
    except CpuKernelsError as err:
        raise SystemExit(str(err)) from None
    import pandas as pd
    import torch

    from mmsa.runtime.kernels import kernel_provenance
    from mmsa.runtime.tables import markdown_table
    from mmsa.stages.kernel_fingerprints import fingerprints

    digests = fingerprints(config)
    found = cpu_flags()
    cpu = found[0] if found else platform.processor()
    print(f"CPU {cpu} ({platform.machine()}), torch {torch.__version__}, cpu_kernels {setting}")
    print(f"provenance: {json.dumps(kernel_provenance())}\n")
    print(
        markdown_table(pd.DataFrame({"step": list(digests), "sha256": [f"`{v}`" for v in digests.values()]}))
    )
    if args.json:
        args.json.write_text(
            json.dumps({"cpu": cpu, "setting": setting, "digests": digests}, indent=1) + "\n"
        )
    if args.reference:
        reference = json.loads(args.reference.read_text())
        differ = [k for k, v in reference["digests"].items() if digests.get(k) != v]
        print(
            f"\n{len(reference['digests']) - len(differ)} of {len(reference['digests'])} rows equal "
            f"{args.reference} ({reference['cpu']}, cpu_kernels {reference['setting']})"
        )
        if differ:
            raise SystemExit("rows that differ: " + "; ".join(differ))


if __name__ == "__main__":
    main()
