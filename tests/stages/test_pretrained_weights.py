"""A given pretrained model (``pretrain.weights``): refused with the settings it differs in,
before any job (config validation) and in full in the job that places it; placed as it is."""

import hashlib
import json
import shutil
import subprocess
import sys

import pytest
import torch

from helpers import TINY_MODEL
from mmsa.features.settings import FeatureSettings
from mmsa.models.pretrained_file import save_pretrained
from mmsa.plan.config import ConfigError, validate_config
from mmsa.plan.config_slices import stage_config
from mmsa.plan.datasets import all_datasets
from mmsa.plan.pretrained_weights import WeightsError, read_record
from mmsa.stages.given_weights import place_weights
from mmsa.stages.report import settings_summary
from mmsa.train.pretrain_loop import build_model
from mmsa.train.pretrain_settings import PretrainSettings

pytestmark = pytest.mark.usefixtures("single_thread")
FEATURES = {"image_size": 32}


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """A tiny model saved as pretraining saves it, for features of 32-pixel images."""
    folder = tmp_path_factory.mktemp("weights")
    torch.manual_seed(0)
    model = build_model(PretrainSettings.from_dict({"model": TINY_MODEL}), "hu")
    save_pretrained(model, folder / "model.pt", FeatureSettings.from_dict(FEATURES).record())
    return folder / "model.pt"


def config_for(path, featurize=FEATURES, model=TINY_MODEL):
    return {
        "featurize": featurize,
        "pretrain": {"weights": str(path), "settings": {"model": model}},
    }


def refusal(config) -> str:
    with pytest.raises(ConfigError) as info:
        validate_config(config)
    return str(info.value)


def test_a_model_for_the_config_s_features_and_gin_is_accepted(saved):
    config = validate_config(config_for(saved))
    assert config["pretrain"]["weights"] == str(saved)
    assert read_record(saved)["model_config"]["gnn_dim"] == TINY_MODEL["gnn_dim"]


def test_other_features_and_another_gin_are_refused_naming_each_setting(saved):
    message = refusal(
        config_for(
            saved,
            {"image_size": 64, "graph_features": "rich", "conformer": {"force_field": "uff"}},
            {**TINY_MODEL, "gnn_dim": 32, "gnn_jk": "sum"},
        )
    )
    assert "at 'pretrain.weights'" in message
    for name, model, here in [
        ("featurize.image_size", "32", "64"),
        ("featurize.graph_features", "'hu'", "'rich'"),
        ("featurize.conformer.force_field", "'mmff'", "'uff'"),
        ("pretrain.settings.model.gnn_dim", "16", "32"),
        ("pretrain.settings.model.gnn_jk", "'last'", "'sum'"),
    ]:
        assert f"{name}: {model} in the model, {here} here" in message
    assert "gnn_layers" not in message and "image_width" not in message  # equal, or not the GIN


def test_a_missing_or_unreadable_file_is_named(saved, tmp_path):
    assert "no such file" in refusal(config_for(tmp_path / "absent.pt"))
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a model at all")
    assert f"{junk}: not a readable torch weights file" in refusal(config_for(junk))
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(saved.read_bytes()[:2000])
    assert "not a readable torch weights file" in refusal(config_for(truncated))
    foreign = tmp_path / "foreign.pt"
    torch.save({"weights": torch.zeros(2)}, foreign)
    assert "not a pretrained model that mmsa saved" in refusal(config_for(foreign))


def test_the_run_s_own_pretrained_model_cannot_be_its_input(saved, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "results" / "pretrain").mkdir(parents=True)
    (tmp_path / "results" / "pretrain" / "model.pt").write_bytes(saved.read_bytes())
    assert "is where this run places the given model" in refusal(config_for("results/pretrain/model.pt"))
    assert "at 'pretrain.weights'" in refusal(config_for(""))  # not a path, and not null either


def test_a_model_saved_without_its_feature_record_is_refused(saved, tmp_path):
    old = tmp_path / "old.pt"
    weights = torch.load(saved, weights_only=True)
    del weights["features"]
    torch.save(weights, old)
    assert "records no feature settings" in refusal(config_for(old))


def test_a_pickle_that_would_run_code_is_refused_unread(tmp_path):
    evil = tmp_path / "evil.pt"
    torch.save({"model_config": {}, "state_dict": {}, "features": shutil.rmtree}, evil)
    assert "shutil.rmtree has no place in a weights file" in refusal(config_for(evil))


def test_the_config_check_of_the_weights_loads_neither_torch_nor_rdkit(saved):
    """The Snakefile's process runs it before any job; it must not need them."""
    config = validate_config(config_for(saved))
    config["featurize"]["image_size"] = 64
    code = (
        "import json, sys\nfrom mmsa.plan.pretrained_weights import weights_errors\n"
        f"errors = weights_errors({config!r})\n"
        "print(json.dumps([errors, sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'rdkit'))]))"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    errors, heavy = json.loads(run.stdout)
    assert "featurize.image_size: 32 in the model, 64 here" in errors[0] and heavy == []


def placed(config, weights, out):
    return place_weights(stage_config(validate_config(config), "given_weights"), weights, out)


def test_the_job_places_the_bytes_it_checked_and_records_their_hash(saved, tmp_path):
    record = placed(config_for(saved), saved, tmp_path / "pretrain")
    assert (tmp_path / "pretrain" / "model.pt").read_bytes() == saved.read_bytes()
    written = json.loads((tmp_path / "pretrain" / "config.json").read_text())
    assert written["sha256"] == record["sha256"] == hashlib.sha256(saved.read_bytes()).hexdigest()
    assert written["weights"] == str(saved) and written["features"]["image_size"] == 32


def test_the_job_refuses_the_gin_defaults_and_versions_the_config_check_cannot_see(saved, tmp_path):
    unset = {k: v for k, v in TINY_MODEL.items() if k != "gnn_dim"}  # MMSAConfig's default: 300
    validate_config(config_for(saved, model=unset))  # passes: the default needs torch to know
    with pytest.raises(WeightsError, match=r"pretrain.settings.model.gnn_dim: 16 in the model, 300 here"):
        placed(config_for(saved, model=unset), saved, tmp_path / "a")
    weights = torch.load(saved, weights_only=True)
    weights["features"].update(rdkit="2000.01.1", featurizer_version=0)
    torch.save(weights, tmp_path / "other-rdkit.pt")
    with pytest.raises(WeightsError) as info:
        placed(config_for(tmp_path / "other-rdkit.pt"), tmp_path / "other-rdkit.pt", tmp_path / "b")
    assert "the RDKit version: '2000.01.1' in the model" in str(info.value)
    assert "the featurizer version: 0 in the model" in str(info.value)
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_the_job_refuses_weights_that_do_not_fit_their_model_config(saved, tmp_path):
    weights = torch.load(saved, weights_only=True)
    name = next(k for k in weights["state_dict"] if k.startswith("graph_encoder"))
    weights["state_dict"][name] = torch.zeros(3, 3)
    torch.save(weights, tmp_path / "misshapen.pt")
    with pytest.raises(WeightsError, match="do not fit its model config"):
        placed(config_for(saved), tmp_path / "misshapen.pt", tmp_path / "out")


def test_the_rule_declares_the_settings_it_checks_and_no_others(saved):
    part = stage_config(validate_config(config_for(saved)), "given_weights")
    assert part["pretrain"]["weights"] == str(saved)
    gin = set(part["pretrain"]["settings"]["model"])
    assert gin == {"gnn_layers", "gnn_dim"}  # those the config sets; image_width does not shape the GIN
    assert set(part["featurize"]) == {"graph_features", "image_size", "conformer"} and "cache_dir" not in part


def test_the_report_names_the_given_model(saved):
    assert f"pretrained model given: `{saved}`" in settings_summary(validate_config(config_for(saved)))
    assert "pretrained model given" not in settings_summary(validate_config({}))


def test_given_weights_leave_the_corpus_out_of_the_datasets(saved):
    finetune = {"datasets": ["bbbp"]}
    assert all_datasets(validate_config({"finetune": finetune})) == ["zinc", "bbbp"]
    assert all_datasets(validate_config({**config_for(saved), "finetune": finetune})) == ["bbbp"]
