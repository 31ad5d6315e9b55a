"""The config part each stage is handed (and each rule declares)."""

from dataclasses import fields

import pytest

from mmsa.features.settings import FeatureSettings
from mmsa.plan.compared_models import MODEL_NAMES
from mmsa.plan.config import validate_config
from mmsa.plan.config_slices import FEATURES, STAGES, stage_config
from mmsa.plan.finetune_settings import FinetuneSettings, settings_read_by


@pytest.fixture(scope="module")
def config():
    return validate_config(
        {
            "data": {"max_rows": {"bbbp": 50}, "sample_rows": {"zinc": 100}},
            "finetune": {"datasets": ["bbbp"], "settings": {"rf_trees": 7, "lr": 0.01}},
        }
    )


def test_a_forest_is_handed_its_trees_and_nothing_of_the_gin(config):
    part = stage_config(config, "finetune", "bbbp", "ecfp-rf")
    assert part["finetune"]["settings"] == {"rf_trees": 7}
    assert "pretrain" not in part and "featurize" not in part and "cache_dir" not in part


def test_the_from_scratch_gin_is_handed_the_architecture_it_builds(config):
    part = stage_config(config, "finetune", "bbbp", "no-pretrain")
    assert set(part["pretrain"]["settings"]["model"]) <= {"gnn_layers", "gnn_dim", "gnn_jk", "gnn_pool"}
    assert part["finetune"]["settings"]["lr"] == 0.01 and "rf_trees" not in part["finetune"]["settings"]
    assert part["featurize"]["graph_features"] == config["featurize"]["graph_features"]
    assert "chunk_size" not in part["featurize"]
    assert "pretrain" not in stage_config(config, "finetune", "bbbp", "mmsa-graph")


def test_the_structure_heads_are_handed_their_neighbours_and_only_the_label_head_its_space(config):
    labels = stage_config(config, "finetune", "bbbp", "mmsa-labels")
    assert labels["finetune"]["neighbours"] == 10 and labels["finetune"]["settings"]["label_space"] == "fused"
    assert "structure_dim" not in labels["finetune"]["settings"]
    mmsa = stage_config(config, "finetune", "bbbp", "mmsa")["finetune"]  # k for held-out molecules
    assert mmsa["neighbours"] == 10 and "label_space" not in mmsa["settings"]
    graph = stage_config(config, "finetune", "bbbp", "mmsa-graph")["finetune"]
    assert "label_space" not in graph["settings"] and "neighbours" not in graph


def test_only_a_sampled_dataset_depends_on_the_seed(config):
    zinc, bbbp = stage_config(config, "fetch", "zinc"), stage_config(config, "fetch", "bbbp")
    assert zinc["seed"] == 0 and zinc["data"]["sample_rows"] == {"zinc": 100}
    assert "seed" not in bbbp
    # an absent per-dataset entry keeps its (empty) mapping, so the stage can look it up
    assert bbbp["data"]["max_rows"] == {"bbbp": 50} and bbbp["data"]["sample_rows"] == {}
    assert zinc["data"]["max_rows"] == {}


def test_every_stage_is_known_and_an_unknown_one_is_named(config):
    assert {"fetch", "featurize", "pretrain", "finetune", "report"} <= set(STAGES)
    with pytest.raises(ValueError, match="finetun'"):
        stage_config(config, "finetun")


def test_every_finetune_setting_is_handed_to_a_job_that_reads_it(config):
    """The settings each model is handed come from the reader written beside each setting, so
    a new setting reaches its jobs (and reruns them) without a second list to update."""
    jobs = [stage_config(config, "finetune", "bbbp", m) for m in MODEL_NAMES] + [
        stage_config(config, "split", "bbbp")
    ]
    handed = [set(part.get("finetune", {}).get("settings", {})) for part in jobs]
    for setting in fields(FinetuneSettings):
        assert any(setting.name in h for h in handed), setting.name
    forest = stage_config(config, "finetune", "bbbp", "ecfp-rf")["finetune"]["settings"]
    assert set(forest) == set(settings_read_by("forest")) == {"rf_trees"}


def test_the_feature_cache_keys_on_every_feature_setting_and_not_on_the_work_split():
    featurize = {path[1] for path in FEATURES if path[0] == "featurize"}
    assert featurize == {f.name for f in fields(FeatureSettings)}
    assert "chunk_size" not in featurize and ("cache_dir",) in FEATURES


def test_the_report_is_handed_every_setting_its_table_names(config):
    """The dry-run test cannot see it (the report reruns for its inputs first), so here: a changed
    finetuning or pretraining setting reaches the report job's declared config."""
    part = stage_config(config, "report")
    assert part["finetune"]["settings"]["rf_trees"] == 7 and part["finetune"]["settings"]["lr"] == 0.01
    assert "neighbours" in part["finetune"] and "model" in part["pretrain"]["settings"]
