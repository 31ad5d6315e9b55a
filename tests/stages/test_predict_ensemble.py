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
    meta = {
        **meta,
        "seed": seed,
        "tasks": list(tasks),
        "target_mean": [0.0] * len(tasks),
        "target_std": [1.0] * len(tasks),
    }
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
    assert lines[0] == (
        f"mmsa predict: --model {mixed}: seed-1.pt and seed-0.pt come from different finetuning runs "
        "(tasks ['a', 'b'] vs ['y'])"
    )
    assert not (folder / "m.csv").exists()


def _folder_of(tmp_path, files):
    """A seed folder holding ``files`` ({name: source model file})."""
    folder = tmp_path / "folder"
    folder.mkdir()
    for name, source in files.items():
        (folder / name).write_bytes(source.read_bytes())
    return folder


def _refusal(seeds, model, capsys):
    folder, config, _ = seeds
    args = ["predict", str(folder / "in.csv"), "--config", str(config), "--model", str(model)]
    assert main([*args, "--out", str(folder / "refused.csv")]) == 1
    assert not (folder / "refused.csv").exists()
    return capsys.readouterr().err.strip().splitlines()[-1]


def test_a_copy_of_one_seed_s_model_is_not_another_seed(seeds, tmp_path, capsys):
    """Two copies of one model agree perfectly: their zero spread would read as certainty."""
    _, _, files = seeds
    copies = _folder_of(tmp_path, {"seed-0.pt": files[0], "seed-1.pt": files[0]})
    line = _refusal(seeds, copies, capsys)
    assert line == f"mmsa predict: --model {copies}: seed-1.pt holds the model of seed 0"
    model, meta = load_property_model(files[0])  # a file from before models recorded their seed
    unrecorded = tmp_path / "unrecorded.pt"
    save_property_model(model, {k: v for k, v in meta.items() if k not in ("seed", "reference")}, unrecorded)
    twins = tmp_path / "twins"
    twins.mkdir()
    for name in ("seed-0.pt", "seed-1.pt"):
        (twins / name).write_bytes(unrecorded.read_bytes())
    line = _refusal(seeds, twins, capsys)
    assert line == f"mmsa predict: --model {twins}: seed-1.pt is a copy of seed-0.pt (same bytes), not a seed"


def test_a_seed_file_must_hold_the_model_of_its_seed_and_no_seed_twice(seeds, tmp_path, capsys):
    _, _, files = seeds
    renamed = _folder_of(tmp_path, {"seed-0.pt": files[0], "seed-7.pt": files[2]})
    line = _refusal(seeds, renamed, capsys)
    assert line == f"mmsa predict: --model {renamed}: seed-7.pt holds the model of seed 2"


@pytest.mark.parametrize("stray", ["Seed-3.pt", "seed-1-copy.pt", "model.pt"])
def test_a_model_file_not_named_like_a_seed_s_is_named_not_ignored(seeds, tmp_path, capsys, stray):
    _, _, files = seeds
    folder = _folder_of(tmp_path, {"seed-0.pt": files[0], stray: files[1]})
    assert _refusal(seeds, folder, capsys) == (
        f"mmsa predict: --model {folder}: holds {stray}, not named seed-<n>.pt like a seed's model; "
        "move or rename it, or give one model file"
    )


def test_seed_models_of_two_finetuning_runs_are_not_averaged(seeds, tmp_path, capsys):
    folder, _, files = seeds
    _, meta = load_property_model(files[1])
    model, _ = load_property_model(files[1])
    other_run = tmp_path / "other-run.pt"
    meta = {k: v for k, v in meta.items() if k != "reference"}
    save_property_model(model, {**meta, "run": "another"}, other_run)
    mixed = _folder_of(tmp_path, {"seed-0.pt": files[0], "seed-1.pt": other_run})
    assert _refusal(seeds, mixed, capsys) == (
        f"mmsa predict: --model {mixed}: seed-1.pt and seed-0.pt come from different finetuning runs "
        "(run 'another' vs 'tiny')"
    )
