from pathlib import Path

import pytest

from mmsa.config import ConfigError, deep_merge, load_config, validate_config
from mmsa.plan import all_datasets, n_shards

REPO = Path(__file__).resolve().parent.parent


def test_defaults_are_filled_in():
    config = validate_config({})
    assert config["featurize"]["image_size"] == 64
    assert config["featurize"]["conformer"]["force_field"] == "mmff"
    assert config["data"]["standardize"]["largest_fragment"] is True


def test_given_values_are_kept():
    config = validate_config({"featurize": {"image_size": 128}})
    assert config["featurize"]["image_size"] == 128
    assert config["featurize"]["chunk_size"] == 8


def test_unknown_key_is_named():
    with pytest.raises(ConfigError, match=r"at 'featurize'.*'imagesize' was unexpected"):
        validate_config({"featurize": {"imagesize": 32}})


def test_bad_value_is_named_with_its_path():
    with pytest.raises(ConfigError, match=r"at 'featurize.conformer.force_field'"):
        validate_config({"featurize": {"conformer": {"force_field": "amber"}}})


def test_all_errors_reported_together():
    with pytest.raises(ConfigError) as info:
        validate_config({"seed": "x", "data": {"shard_size": 0}})
    assert "at 'seed'" in str(info.value) and "at 'data.shard_size'" in str(info.value)


def test_validation_does_not_modify_the_input():
    given = {"data": {}}
    validate_config(given)
    assert given == {"data": {}}


@pytest.mark.parametrize("name", ["default.yaml", "test.yaml", "paper.yaml"])
def test_shipped_configs_are_valid(name):
    config = load_config(REPO / "config" / name)
    assert all_datasets(config)[0] == config["pretrain"]["dataset"]


def test_shard_count_follows_size_and_limits():
    config = validate_config(
        {"data": {"shard_size": 1000, "max_rows": {"zinc": 2500}, "shards": {"bbbp": 7}}}
    )
    assert n_shards(config, "zinc") == 3
    assert n_shards(config, "bbbp") == 7
    assert n_shards(config, "esol") == 2  # 1,128 expected rows


def test_deep_merge_merges_nested_mappings():
    assert deep_merge({"a": {"b": 1, "c": 2}}, {"a": {"c": 3}}) == {"a": {"b": 1, "c": 3}}


def test_schema_lists_exactly_the_model_and_trainer_settings():
    import dataclasses

    from mmsa.config import load_schema
    from mmsa.models.mmsa import GEO_ENCODERS, MMSAConfig
    from mmsa.train.pretrain import PretrainSettings

    settings = load_schema()["properties"]["pretrain"]["properties"]["settings"]["properties"]
    model = set(settings["model"]["properties"])
    assert model == {f.name for f in dataclasses.fields(MMSAConfig)} - {"feature_set"}
    assert settings["model"]["properties"]["geo_encoder"]["enum"] == list(GEO_ENCODERS)
    assert set(settings) == {f.name for f in dataclasses.fields(PretrainSettings)}
    defaults = validate_config({})["pretrain"]["settings"]
    assert PretrainSettings.from_dict(defaults) == PretrainSettings(**{**defaults, "model": {}})
    assert PretrainSettings.from_dict(defaults) == PretrainSettings()


def test_model_typo_is_caught_by_the_schema():
    with pytest.raises(ConfigError, match="pretrain.settings.model.*'gnn_dims' was unexpected"):
        validate_config({"pretrain": {"settings": {"model": {"gnn_dims": 8}}}})
