"""config/paper.yaml at its sizes, shrunk only in rows, batch and epochs: the CPU path of the paper
reproduction, kept working until a GPU runs it (issue 17).

The model keeps the paper's layer sizes (ResNet-18 at 224 px, ComENet 4 x 256, GIN 5 x 300),
its loader workers and bf16 autocast, which ``amp_on_cpu`` runs on the CPU too, so that a dtype
mistake of the GPU path fails here. 32 ZINC molecules in batches of 16 make two optimizer steps;
then the structure-aware ``mmsa`` model is finetuned on 40 BBBP molecules and ``mmsa predict``
uses it.
"""

from __future__ import annotations

import json
import math
import time

import pandas as pd
import pytest
import torch
import yaml

from cli import mmsa_cli
from helpers import REPO, run_snakemake, tiny_workflow_config

pytestmark = pytest.mark.slow

MOLECULES, BATCH = 32, 16


def paper_smoke_config(work, download_cache) -> dict:
    config = yaml.safe_load((REPO / "config" / "paper.yaml").read_text())
    config["cache_dir"] = tiny_workflow_config(work, download_cache)["cache_dir"]
    config["data"] = {"max_rows": {"zinc": MOLECULES, "bbbp": 40}, "shard_size": config["data"]["shard_size"]}
    pretrain = config["pretrain"]
    pretrain["dataset"] = "zinc"  # registry archive the other tests download too
    del pretrain["corpus"]
    pretrain["settings"].update(epochs=1, batch_size=BATCH, amp_on_cpu=True)
    fine = config["finetune"]
    fine.update(datasets=["bbbp"], models=["mmsa"], seeds=[0])
    fine["settings"]["epochs"] = 1
    return config


@pytest.fixture(scope="module")
def paper_run(tmp_path_factory, download_cache):
    work = tmp_path_factory.mktemp("paper")
    config = paper_smoke_config(work, download_cache)
    path = work / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    started = time.perf_counter()
    run = run_snakemake(work, path)
    assert run.returncode == 0, (run.stdout + run.stderr)[-4000:]
    print(f"paper smoke run: {time.perf_counter() - started:.0f} s")
    return work, path, config


def test_two_optimizer_steps_at_the_paper_sizes_with_finite_losses(paper_run):
    work, _, config = paper_run
    out = work / "results" / "pretrain"
    losses = pd.read_csv(out / "losses.csv")
    print(losses.to_string(index=False))
    assert len(losses) == MOLECULES // BATCH == 2
    assert all(math.isfinite(v) for v in losses.drop(columns=["step", "epoch", "lr"]).to_numpy().ravel())
    weights = torch.load(out / "model.pt", weights_only=True)
    model = config["pretrain"]["settings"]["model"]
    for key in ("gnn_dim", "gnn_layers", "geo_encoder", "geo_hidden", "image_layers", "embed_dim"):
        assert weights["model_config"][key] == model[key], key
    assert weights["features"]["image_size"] == 224
    assert json.loads((out / "throughput.json").read_text())["steps"] == 2
    ran = json.loads((out / "config.json").read_text())["pretrain"]
    assert (ran["amp"], ran["amp_on_cpu"], ran["loader_workers"]) == (True, True, 8)  # the paper's 8 workers


def test_the_finetuned_model_predicts_new_molecules(paper_run, tmp_path):
    work, path, _ = paper_run
    smiles = tmp_path / "new.csv"
    smiles.write_text("smiles\nCC(=O)Oc1ccccc1C(=O)O\nCN1C(=O)N(C)c2ncn(C)c2C1=O\nc1ccccc1O\n")
    result = json.loads((work / "results" / "finetune" / "bbbp" / "mmsa" / "seed-0.json").read_text())
    assert (result["model"], result["dataset"], len(result["curve"])) == ("mmsa", "bbbp", 1)
    predict = mmsa_cli(
        work,
        "predict",
        smiles,
        "--config",
        path,
        "--model",
        work / "results" / "finetune" / "bbbp" / "mmsa" / "seed-0.pt",
        "--pretrained",
        work / "results" / "pretrain" / "model.pt",
        "--out",
        tmp_path / "pred.csv",
    )
    assert predict.returncode == 0, predict.stderr[-3000:]
    predictions = pd.read_csv(tmp_path / "pred.csv")
    print(predictions.to_string(index=False))
    assert predictions["row"].tolist() == [0, 1, 2]
    assert predictions["p_np"].between(0, 1).all()
