"""``mmsa embed`` and ``mmsa predict`` featurize new molecules as the model's training molecules
were (mmsa.stages.model_features), whatever the config says: the README's ``mmsa embed`` without
``--config`` read ``config/default.yaml``'s 64-pixel images for a model trained on 32 and moved
the embeddings by up to 0.22."""

import pandas as pd
import pytest
import torch
import yaml

from cli import tiny_models
from helpers import SMALL_FEATURES, TINY_MODEL
from mmsa.cli import main
from mmsa.features.settings import FEATURIZER_VERSION, FeatureSettings
from mmsa.models.pretrained_file import save_pretrained
from mmsa.train.pretrain_loop import build_model
from mmsa.train.pretrain_settings import PretrainSettings


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    folder = tmp_path_factory.mktemp("model-features")
    config, pretrained, finetuned = tiny_models(folder)
    (folder / "in.csv").write_text("smiles\nCCO\nc1ccccc1O\nCC(=O)Nc1ccc(O)cc1\n")
    other = yaml.safe_load(config.read_text())
    other["featurize"] = {**other["featurize"], "image_size": 64, "conformer": {"optimize_steps": 50}}
    (folder / "other.yaml").write_text(yaml.safe_dump(other))
    return folder, config, pretrained, finetuned


def run(folder, command, config, model, out, capsys):
    args = [command, str(folder / "in.csv"), "--config", str(config), "--model", str(model)]
    status = main([*args, "--out", str(folder / out)])
    return status, capsys.readouterr().err


def test_embed_featurizes_as_the_model_was_trained_and_says_what_it_set_aside(models, capsys):
    folder, config, pretrained, _ = models
    assert run(folder, "embed", config, pretrained, "own.parquet", capsys)[0] == 0
    status, err = run(folder, "embed", folder / "other.yaml", pretrained, "other.parquet", capsys)
    assert status == 0
    own, other = (pd.read_parquet(folder / name) for name in ("own.parquet", "other.parquet"))
    assert own["fused"].map(list).tolist() == other["fused"].map(list).tolist()
    assert (
        f"featurizing as --model {pretrained} was trained, not as the config says "
        "(featurize.conformer.optimize_steps: 100 in the model, 50 in the config; "
        "featurize.image_size: 32 in the model, 64 in the config)"
    ) in err


def test_predict_featurizes_as_the_finetuned_model_records(models, capsys):
    folder, config, _, finetuned = models
    assert run(folder, "predict", config, finetuned, "own.csv", capsys)[0] == 0
    status, err = run(folder, "predict", folder / "other.yaml", finetuned, "other.csv", capsys)
    assert status == 0 and "featurize.image_size: 32 in the model, 64 in the config" in err
    pd.testing.assert_frame_equal(pd.read_csv(folder / "own.csv"), pd.read_csv(folder / "other.csv"))


def test_a_model_of_another_featurizer_version_is_refused_in_one_line(models, tmp_path, capsys):
    folder, config, _, _ = models
    record = {
        **FeatureSettings.from_dict(SMALL_FEATURES).record(),
        "featurizer_version": FEATURIZER_VERSION - 1,
    }
    torch.manual_seed(0)
    save_pretrained(
        build_model(PretrainSettings.from_dict({"model": TINY_MODEL}), "hu"), tmp_path / "old.pt", record
    )
    status, err = run(folder, "embed", config, tmp_path / "old.pt", "old.parquet", capsys)
    assert status == 1 and err.strip().splitlines()[-1] == (
        f"mmsa embed: --model {tmp_path / 'old.pt'} was trained on features of the featurizer version "
        f"{FEATURIZER_VERSION - 1}, and this mmsa makes those of {FEATURIZER_VERSION}; use the mmsa it "
        "was trained with, or train it again here"
    )
    assert not (folder / "old.parquet").exists()
