"""Kill -9 a stage at random moments, rerun it, and compare with an uninterrupted run.

A stage that writes its outputs atomically and resumes from what a killed run left must end,
after any kill and one plain rerun, with the same bytes as a run that was never interrupted.
This script checks that for three stages, each started as a real process:

* ``featurize``: ``mmsa featurize`` on one shard into an empty feature cache; compared: the
  manifest and rejects files and a digest of every file of the cache (temporary ``.tmp-*``
  leftovers of the killed run excepted: no reader ever opens them);
* ``pretrain``: :func:`mmsa.stages.pretrain` (what the Snakemake rule runs) on a tiny model;
  compared: ``model.pt`` and ``losses.csv`` (``throughput.json`` holds timings, not results);
* ``finetune``: :func:`mmsa.stages.finetune` of ``no-pretrain`` over 4 seeds, the outputs removed
  before the rerun as Snakemake removes a killed job's; compared: every seed's result, predictions
  and weights.

Kill moments are drawn (seeded) between the log line that marks the start of the stage's work
(its imports done) and the last log line of the uninterrupted run (for pretraining: the last
epoch's checkpoint), so they fall inside the work, not in Python's start-up or in Matplotlib's.
Prints a table (stage | kill points tried | killed while running | reruns matching), then what
each kill left behind. ``tests/workflow/test_crash_safety.py`` runs it with a few kill points per stage.

    python benchmarks/kill_rerun.py --kills 5 --seed 0
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from mmsa.runtime.tables import markdown_table

SMILES = [
    "CCO", "c1ccccc1O", "CC(=O)Oc1ccccc1C(=O)O", "CC(=O)Nc1ccc(O)cc1", "CN1CCC[C@H]1c1cccnc1",
    "CCN(CC)CC", "Clc1ccccc1", "OC1CCCCC1", "CCCCCC", "O=C(O)c1ccccc1", "CC(C)Cc1ccc(C(C)C(=O)O)cc1",
    "COc1ccc2[nH]cc(CCN)c2c1", "CN1C(=O)N(C)c2ncn(C)c2C1=O", "c1ccc2ccccc2c1", "CC(C)NCC(O)CO",
    "NC(=O)c1cccnc1", "OCC(O)CO", "CC#N", "C1CCNCC1", "c1ccncc1", "CCOC(=O)C", "CC(C)=O", "O=C1CCCCC1",
    "Cc1ccccc1", "Nc1ccccc1", "OC(=O)CCC(=O)O", "CCCl", "FC(F)(F)c1ccccc1", "C1CCOC1", "CS(C)=O",
    "CC(O)C(=O)O", "NCCO", "CCCCCCCCCC(=O)O", "c1ccc(-c2ccccc2)cc1", "CC(=O)OCC(COC(C)=O)OC(C)=O",
    "O=C(O)CC(O)(CC(=O)O)C(=O)O", "CCN1CCN(CC1)c1ccccc1", "CC1=CC(=O)C=CC1=O", "OC1=CC=CC=C1C=O",
    "C1=CC=C2C(=C1)C=CN2", "CC(C)(C)c1ccc(O)cc1", "CCCCOC(=O)c1ccccc1C(=O)OCCCC", "NC1=NC(=O)C=CN1",
    "C[C@@H](O)[C@H](N)C(=O)O", "CC1(C)SC2C(NC(=O)Cc3ccccc3)C(=O)N2C1C(=O)O",
    "O=C1NC(=O)C(N1)(c1ccccc1)c1ccccc1",
    "CN(C)CCOC(c1ccccc1)c1ccccc1", "Clc1ccc(cc1)C(c1ccc(Cl)cc1)C(Cl)(Cl)Cl",
]  # fmt: skip
TINY_MODEL = {
    "gnn_layers": 2, "gnn_dim": 16, "image_layers": [1, 1], "image_width": 8, "geo_hidden": 16,
    "geo_filters": 16, "geo_interactions": 1, "geo_gaussians": 8, "embed_dim": 16, "fusion_heads": 2,
    "num_anchors": 4, "hypergraph_k": 2,
}  # fmt: skip
PRETRAIN_DRIVER = """
import sys, yaml
from mmsa.runtime.logs import stage_logging
from mmsa.runtime.reproducible import configure_torch
from mmsa.stages.pretrain import pretrain
config = yaml.safe_load(open(sys.argv[1]))
configure_torch(1)
with stage_logging():
    pretrain(config, sys.argv[4:], sys.argv[2], sys.argv[3])
"""
FINETUNE_DRIVER = """
import sys, yaml
from pathlib import Path
from mmsa.runtime.logs import stage_logging
from mmsa.runtime.reproducible import configure_torch
from mmsa.stages.finetune import finetune
from mmsa.stages.finished_seeds import seeds_folder
config, folder, data = yaml.safe_load(open(sys.argv[1])), Path(sys.argv[2]), Path(sys.argv[3])
def per_seed(suffix):
    return [str(folder / f"seed-{s}{suffix}") for s in config["finetune"]["seeds"]]
outputs = {"results": per_seed(".json"), "predictions": per_seed(".predictions.parquet")}
outputs["weights"] = per_seed(".pt")
for path in sum(outputs.values(), []):  # as Snakemake removes the outputs of a killed job
    Path(path).unlink(missing_ok=True)
configure_torch(1)
with stage_logging():
    finetune(config, "toy", "no-pretrain", data / "shards", sorted(data.glob("man-*.parquet")),
             data / "splits.parquet", **outputs, checkpoints=seeds_folder(outputs["results"]))
"""


class StageRun:
    """How to run one stage into a fresh folder, what marks the start of its work, what to compare."""

    name = ""
    marker = ""  # a fragment of the log line written once the stage's imports and set-up are done

    def command(self, folder: Path) -> list[str]:
        raise NotImplementedError

    def outputs(self, folder: Path) -> dict[str, str]:
        """A digest per compared output of a finished run in ``folder``."""
        raise NotImplementedError

    def left(self, folder: Path) -> str:
        """What a killed run left in ``folder`` for the rerun to pick up."""
        raise NotImplementedError


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def tree_digest(root: Path) -> str:
    """One digest of every file's path and bytes under ``root``, ``.tmp-*`` leftovers excepted."""
    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        relative = path.relative_to(root)
        if any(part.startswith(".tmp-") for part in relative.parts):
            continue
        digest.update(relative.as_posix().encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def toy_config(work: Path, cache_dir: Path) -> dict[str, Any]:
    """A validated config for a local CSV dataset ``toy`` of :data:`SMILES` and a tiny model."""
    from mmsa.plan.config import validate_config

    return validate_config(
        {
            "cache_dir": str(cache_dir),
            "data": {
                "local_dir": str(work),
                "shard_size": 1000,
                "custom": {
                    "toy": {
                        "source": "local",
                        "smiles_column": "smiles",
                        "task_type": "classification",
                        "tasks": {"y": "y"},
                    }
                },
            },
            "featurize": {"image_size": 32, "conformer": {"timeout_s": 5, "optimize_steps": 100}},
            "pretrain": {
                "dataset": "toy",
                "settings": {"epochs": 12, "batch_size": 8, "device": "cpu", "model": TINY_MODEL},
            },
            "finetune": {"datasets": ["toy"]},
        }
    )


class Featurize(StageRun):
    name, marker = "featurize", "to compute"

    def __init__(self, work: Path) -> None:
        self.work, self.shard = work, work / "data" / "shards" / "shard-00000.parquet"

    def command(self, folder: Path) -> list[str]:
        config = folder / "config.yaml"
        if not config.exists():
            config.write_text(yaml.safe_dump(toy_config(self.work, folder / "cache")))
        return [
            sys.executable, "-m", "mmsa.cli", "featurize", str(self.shard), "--config", str(config),
            "--manifest", str(folder / "manifest.parquet"), "--rejects", str(folder / "rejects.parquet"),
        ]  # fmt: skip

    def outputs(self, folder: Path) -> dict[str, str]:
        return {
            "manifest": _sha256(folder / "manifest.parquet"),
            "rejects": _sha256(folder / "rejects.parquet"),
            "feature cache": tree_digest(folder / "cache"),
        }

    def left(self, folder: Path) -> str:
        entries = [p.name for p in (folder / "cache").glob("features/*/packs/*")]
        partial = sum(name.startswith(".tmp-") for name in entries)
        done = len(entries) - partial
        manifest = (folder / "manifest.parquet").exists()
        return f"{done} pack(s), {partial} partial{', manifest' if manifest else ''}"


class Pretrain(StageRun):
    name, marker = "pretrain", "pretraining on"

    def __init__(self, work: Path) -> None:
        self.config = work / "config.yaml"
        self.manifests = sorted(str(p) for p in (work / "data").glob("man-*.parquet"))

    def command(self, folder: Path) -> list[str]:
        checkpoint = folder / "checkpoints" / "last.pt"
        return [sys.executable, "-c", PRETRAIN_DRIVER, str(self.config), str(folder), str(checkpoint)] + list(
            self.manifests
        )

    def outputs(self, folder: Path) -> dict[str, str]:
        return {"model.pt": _sha256(folder / "model.pt"), "losses.csv": _sha256(folder / "losses.csv")}

    def left(self, folder: Path) -> str:
        import torch

        checkpoint = folder / "checkpoints" / "last.pt"
        epoch = torch.load(checkpoint, weights_only=True)["epoch"] if checkpoint.exists() else 0
        partial = len(list(folder.rglob(".tmp-*")))
        model = ", model.pt" if (folder / "model.pt").exists() else ""
        return f"checkpoint after epoch {epoch}, {partial} partial{model}"


class Finetune(StageRun):
    """A finetune job's seeds (``no-pretrain``, 4 seeds): a rerun starts after the last seed the
    killed run finished (mmsa.stages.finished_seeds), with the outputs Snakemake removed first."""

    name, marker = "finetune", "epoch 1/"

    def __init__(self, work: Path) -> None:
        self.config, self.data = work / "finetune.yaml", work / "data"

    def command(self, folder: Path) -> list[str]:
        return [sys.executable, "-c", FINETUNE_DRIVER, str(self.config), str(folder), str(self.data)]

    def outputs(self, folder: Path) -> dict[str, str]:
        files = sorted(folder.glob("seed-*"))
        return {path.name: _sha256(path) for path in files}

    def left(self, folder: Path) -> str:
        kept = sorted(p.name for p in (folder / "checkpoints").glob("seed-*"))
        return f"kept {', '.join(kept) or 'no seed'}"


def prepare(work: Path) -> list[StageRun]:
    """The toy dataset fetched, standardized, sharded and featurized (the pretraining input), and
    its split table for 4 finetuning seeds."""
    from mmsa.stages.data_stages import run_data_stages
    from mmsa.stages.split import split

    work.mkdir(parents=True, exist_ok=True)
    (work / "toy.csv").write_text("smiles,y\n" + "".join(f"{s},{i % 2}\n" for i, s in enumerate(SMILES)))
    config = toy_config(work, work / "cache")
    (work / "config.yaml").write_text(yaml.safe_dump(config))
    run_data_stages(config, "toy", work / "data")
    tuned = copy.deepcopy(config)
    tuned["finetune"]["seeds"] = [0, 1, 2, 3]
    tuned["finetune"]["settings"].update(epochs=6, batch_size=8, device="cpu")
    (work / "finetune.yaml").write_text(yaml.safe_dump(tuned))
    data = work / "data"
    manifests = sorted(data.glob("man-*.parquet"))
    split(tuned, "toy", data / "shards", manifests, data / "splits.parquet", work / "split.json")
    return [Featurize(work), Pretrain(work), Finetune(work)]


def run(stage: StageRun, folder: Path, kill_after: float | None = None) -> tuple[float, bool]:
    """Run ``stage`` into ``folder``; with ``kill_after``, SIGKILL it that many seconds after its
    marker line. Returns the seconds from the marker to the last log line and whether it was
    killed."""
    folder.mkdir(parents=True, exist_ok=True)
    process = subprocess.Popen(
        stage.command(folder), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    started, log, last_line = threading.Event(), [], [0.0]

    def read() -> None:
        for line in process.stderr:
            log.append(line)
            last_line[0] = time.perf_counter()
            if stage.marker in line:
                started.set()
        started.set()  # the process ended without the marker; a failure shows below

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    started.wait()
    marked = time.perf_counter()
    killed = False
    if kill_after is not None:
        try:
            process.wait(timeout=kill_after)
        except subprocess.TimeoutExpired:
            process.send_signal(signal.SIGKILL)
            killed = True
    code = process.wait()
    reader.join()
    if not killed and code != 0:
        raise RuntimeError(f"{stage.name} failed with exit code {code}:\n{''.join(log[-30:])}")
    return last_line[0] - marked, killed


def kill_and_rerun(stage: StageRun, work: Path, kills: int, rng: random.Random) -> dict[str, Any]:
    """One uninterrupted run, then ``kills`` runs killed at a random moment of its work and rerun."""
    work_seconds, _ = run(stage, work / stage.name / "uninterrupted")
    reference = stage.outputs(work / stage.name / "uninterrupted")
    rows = []
    for i in range(kills):
        folder = work / stage.name / f"killed-{i}"
        delay = rng.uniform(0.0, work_seconds)
        _, killed = run(stage, folder, kill_after=delay)
        left = stage.left(folder)
        run(stage, folder)
        outputs = stage.outputs(folder)
        rows.append(
            {"delay_s": round(delay, 2), "killed": killed, "left": left, "match": outputs == reference}
        )
        if outputs != reference:
            rows[-1]["differs"] = [k for k in reference if outputs[k] != reference[k]]
    return {
        "stage": stage.name,
        "work_s": round(work_seconds, 2),
        "tried": kills,
        "killed": sum(r["killed"] for r in rows),
        "matching": sum(r["match"] for r in rows),
        "runs": rows,
    }


def kill_rerun_report(work: Path, kills: int, seed: int) -> list[dict[str, Any]]:
    """Kill-and-rerun results of every stage, ``kills`` kill points each."""
    rng = random.Random(seed)
    stages = prepare(work)
    return [kill_and_rerun(stage, work, kills, rng) for stage in stages]


def format_report(results: list[dict[str, Any]]) -> str:
    """The summary table, then one line per kill point."""
    summary = pd.DataFrame(
        [[r["stage"], r["tried"], r["killed"], f"{r['matching']}/{r['tried']}"] for r in results],
        columns=["stage", "kill points tried", "killed while running", "reruns matching"],
        dtype=object,
    )
    kills = pd.DataFrame(
        [
            [
                r["stage"],
                f"{x['delay_s']} of {r['work_s']}" + ("" if x["killed"] else " (had finished)"),
                x["left"],
                "yes" if x["match"] else "NO",
            ]
            for r in results
            for x in r["runs"]
        ],
        columns=["stage", "kill at (s into the work)", "the kill left", "rerun matches"],
        dtype=object,
    )
    return markdown_table(summary) + "\n" + markdown_table(kills).rstrip("\n")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--kills", type=int, default=5, help="kill points per stage (default 5)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the kill moments (default 0)")
    parser.add_argument("--work", help="working folder (default: a temporary one, removed after)")
    args = parser.parse_args()
    work = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="kill-rerun-"))
    try:
        print(format_report(kill_rerun_report(work, args.kills, args.seed)))
    finally:
        if not args.work:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
