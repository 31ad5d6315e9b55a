"""config/paper.yaml's costs measured on the CPU, and what they ask of a GPU machine (issue 17).

    PYTHONPATH=$PWD python benchmarks/paper_cpu.py [--molecules 1024] [--downloads resources/cache/downloads]

Prints four tables:

1. featurization of ``--molecules`` ZINC molecules at 64 px and at 224 px (the paper's images):
   wall seconds per molecule on this machine's cores and feature-cache bytes per molecule;
2. the pretraining loader (``ShardBatches`` through a ``DataLoader``) at 224 px with the paper's
   batch of 256, over shards of 128 molecules: molecules per second of a whole epoch (worker
   start-up included) with 0, 1 and 2 workers, and per worker;
3. one optimizer step of the paper model (ResNet-18 at 224 px, ComENet 4 x 256, GIN 5 x 300) at
   batch 32 on the CPU: seconds per step and the process's peak resident memory;
4. the projection: the largest GPU step rate that 8 loader workers can feed with at most 10% of the
   wall time spent waiting for batches (``data_fraction`` <= 0.10 needs the loader's 8 x L
   molecules/s to be at least 0.9 of the GPU's rate), and the 224 px feature cache for 50K and 1M
   molecules.
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from pathlib import Path

import torch
import yaml
from _common import fresh_cache, machine, table

from mmsa.features.cache import FeatureCache
from mmsa.plan.config import validate_config
from mmsa.stages.data_stages import run_data_stages
from mmsa.stages.inputs import feature_settings
from mmsa.train.pretrain_loop import build_model
from mmsa.train.pretrain_settings import PretrainSettings
from mmsa.train.stream import ShardBatches, batch_loader

REPO = Path(__file__).resolve().parent.parent
PAPER = yaml.safe_load((REPO / "config" / "paper.yaml").read_text())
BATCH, STEP_BATCH, WORKERS = PAPER["pretrain"]["settings"]["batch_size"], 32, 8
SHARD = 128  # small shards, so that each loader worker has several to read


def featurized(
    root: Path, downloads: str | None, molecules: int, image_size: int
) -> tuple[dict, Path, float]:
    """ZINC's first ``molecules`` rows through the data stages at ``image_size``: the config, the
    run folder and the wall seconds."""
    with fresh_cache(root / f"cache-{image_size}", downloads) as cache_dir:
        pass  # the cache outlives the block: it is read below
    config = validate_config(
        {
            "cache_dir": cache_dir,
            "data": {"max_rows": {"zinc": molecules}, "shard_size": SHARD},
            "featurize": {**PAPER["featurize"], "image_size": image_size},
        }
    )
    folder = root / f"run-{image_size}"
    started = time.perf_counter()
    run_data_stages(config, "zinc", folder, threads=2)
    return config, folder, time.perf_counter() - started


def cache_bytes(cache_dir: str) -> int:
    return sum(
        p.stat().st_size for p in Path(cache_dir).rglob("*") if p.is_file() and "downloads" not in p.parts
    )


def loader_rate(config: dict, folder: Path, workers: int) -> float:
    """Molecules per second of one whole epoch of paper batches, from creating the loader to its
    last batch (worker start-up included: with a few thousand molecules it is part of the cost)."""
    cache = FeatureCache(config["cache_dir"], feature_settings(config))
    manifests = sorted(folder.glob("man-*.parquet"))
    started, molecules = time.perf_counter(), 0
    for batch in batch_loader(ShardBatches(manifests, cache, BATCH, seed=0), workers):
        molecules += batch.num_graphs
    return molecules / (time.perf_counter() - started)


def step_cost(config: dict, folder: Path) -> tuple[float, float]:
    """Seconds per optimizer step of the paper model at batch 32, and peak RSS in MiB."""
    cache = FeatureCache(config["cache_dir"], feature_settings(config))
    batch = next(iter(ShardBatches(sorted(folder.glob("man-*.parquet")), cache, STEP_BATCH, seed=0)))
    torch.manual_seed(0)
    model = build_model(PretrainSettings.from_dict(PAPER["pretrain"]["settings"]), "hu").train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    times = []
    for _ in range(3):
        started = time.perf_counter()
        loss = model(batch)["loss"]
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        times.append(time.perf_counter() - started)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return min(times[1:]), peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--molecules", type=int, default=1024, help="ZINC molecules featurized (default 1024)"
    )
    parser.add_argument("--downloads", default="resources/cache/downloads", help="reuse these downloads")
    args = parser.parse_args()
    torch.set_num_threads(2)
    print(f"# config/paper.yaml on the CPU\n\n{machine()}\n")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        rows, runs = [], {}
        for size in (64, 224):
            config, folder, seconds = featurized(root, args.downloads, args.molecules, size)
            runs[size] = (config, folder)
            nbytes = cache_bytes(config["cache_dir"])
            rows.append(
                [
                    f"{size} px",
                    args.molecules,
                    f"{seconds / args.molecules * 1000:.0f}",
                    f"{nbytes / args.molecules / 1024:.1f}",
                ]
            )
        print(
            table(["images", "molecules", "ms per molecule (2 cores)", "cache KiB per molecule"], rows), "\n"
        )
        per_molecule = cache_bytes(runs[224][0]["cache_dir"]) / args.molecules
        config, folder = runs[224]
        rates = {w: loader_rate(config, folder, w) for w in (0, 1, 2)}
        print(
            table(
                ["loader workers", "molecules/s", "per worker"],
                [[w, f"{r:.0f}", f"{r / max(w, 1):.0f}"] for w, r in rates.items()],
            ),
            "\n",
        )
        step, peak = step_cost(config, folder)
        print(
            table(
                ["paper model, batch 32", "s per step", "molecules/s", "peak RSS MiB"],
                [["CPU, 2 threads", f"{step:.2f}", f"{STEP_BATCH / step:.1f}", f"{peak:.0f}"]],
            ),
            "\n",
        )
        per_worker = rates[1]
        feed = WORKERS * per_worker / 0.9
        print(
            table(
                ["projection", "value"],
                [
                    ["loader molecules/s per worker at 224 px (1 worker)", f"{per_worker:.0f}"],
                    [
                        f"largest GPU rate {WORKERS} workers feed at data_fraction <= 0.10",
                        f"{feed:.0f} molecules/s",
                    ],
                    ["CPU step rate of the paper model (batch 32)", f"{STEP_BATCH / step:.1f} molecules/s"],
                    ["224 px feature cache, 50K molecules", f"{per_molecule * 50_000 / 2**30:.2f} GiB"],
                    ["224 px feature cache, 1M molecules", f"{per_molecule * 1_000_000 / 2**30:.1f} GiB"],
                ],
            )
        )


if __name__ == "__main__":
    main()
