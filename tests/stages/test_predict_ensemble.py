"""``mmsa predict`` given the folder of a dataset's seed models: the mean of the seeds'
predictions and their standard deviation, from one featurization."""

import numpy as np
import pandas as pd
import pytest
import torch

from cli import mmsa_cli, tiny_models
from mmsa.cli import main
from mmsa.models.property import PropertyModel, build_gin, load_property_model, save_property_model


def seed_model(folder, seed, tasks=("y",), folder_out=None):
    """A seed's finetuned model as the finetune rule names it (in ``folder_out``, by default the
    toy dataset's no-pretrain folder), with its own random weights."""
    _, meta = load_property_model(folder / "finetuned.pt")
    torch.manual_seed(seed)
    model = PropertyModel(build_gin(meta["arch"], meta["dropout"]), len(tasks))
    folder_out = folder_out or folder / "toy" / "no-pretrain"
    folder_out.mkdir(parents=True, exist_ok=True)
    meta = {**meta, "tasks": list(tasks), "target_mean": [0.0] * len(tasks), "target_std": [1.0] * len(tasks)}
    save_property_model(model, meta, folder_out / f"seed-{seed}.pt")
    return folder_out / f"seed-{seed}.pt"


@pytest.fixture(scope="module")
def seeds(tmp_path_factory):
    folder = tmp_path_factory.mktemp("ensemble")
    config, _, _ = tiny_models(folder)
    files = [seed_model(folder, seed) for seed in (0, 1, 2)]
    (folder / "in.csv").write_text("smiles\nCCO\nc1ccccc1O\nCC(=O)Nc1ccc(O)cc1\nnot-a-smiles\n")
    return folder, config, files


def predict(folder, config, model, out):
    """In-process, for speed (tests/adversarial.py runs the real command's failures)."""
    args = ["predict", str(folder / "in.csv"), "--config", str(config), "--model", str(model)]
    assert main([*args, "--out", str(folder / out)]) == 0
    return pd.read_csv(folder / out)


def test_a_folder_of_seed_models_predicts_their_mean_and_spread(seeds):
    folder, config, files = seeds
    ensemble = predict(folder, config, files[0].parent, "ensemble.csv")
    single = np.stack([predict(folder, config, f, f"{i}.csv")["y"].to_numpy() for i, f in enumerate(files)])
    assert list(ensemble.columns) == ["row", "input", "key", "y", "y_std"]
    assert ensemble["row"].tolist() == [0, 1, 2]  # the invalid row is in the rejects, as for one model
    np.testing.assert_allclose(ensemble["y"], single.mean(0), rtol=1e-6)
    np.testing.assert_allclose(ensemble["y_std"], single.std(0, ddof=1), rtol=1e-5)
    assert (ensemble["y_std"] > 0).all()  # three random initializations disagree
    assert pd.read_csv(folder / "ensemble.csv.rejects.csv")["row"].tolist() == [3]


def test_seed_models_of_other_tasks_are_refused_in_one_line(seeds, tmp_path):
    folder, config, files = seeds
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    (mixed / "seed-0.pt").write_bytes(files[0].read_bytes())
    other = seed_model(folder, 1, tasks=("a", "b"), folder_out=tmp_path / "other")
    (mixed / "seed-1.pt").write_bytes(other.read_bytes())
    run = mmsa_cli(folder, "predict", "in.csv", "--config", config, "--model", mixed, "--out", "m.csv")
    lines = run.stderr.strip().splitlines()
    assert run.returncode == 1 and len(lines) == 1, run.stderr
    assert lines[0].startswith(f"mmsa predict: --model {mixed}: seed-1.pt is {{")
    assert "'tasks': ['a', 'b']" in lines[0]
    assert not (folder / "m.csv").exists()
