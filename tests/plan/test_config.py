import re

import pytest

from helpers import REPO
from mmsa.data.row_limit import RowLimit
from mmsa.plan.config import ConfigError, deep_merge, load_config, validate_config
from mmsa.plan.datasets import all_datasets, dataset_spec, duplicate_policy, n_shards, row_limit


def test_defaults_are_filled_in():
    config = validate_config({})
    assert config["featurize"]["image_size"] == 64
    assert config["featurize"]["conformer"]["force_field"] == "mmff"
    assert config["data"]["standardize"]["largest_fragment"] is True


def test_given_values_are_kept():
    config = validate_config({"featurize": {"image_size": 128}})
    assert config["featurize"]["image_size"] == 128
    assert config["featurize"]["chunk_size"] == 8


def test_a_null_takes_a_key_default_back_where_the_schema_takes_no_null():
    config = validate_config(
        {
            "pretrain": {"dataset": "zinc", "corpus": None},
            "finetune": {"models": None, "settings": {"split": None}},
        }
    )
    assert config["pretrain"]["corpus"] == {}
    assert config["finetune"]["settings"]["split"] == "scaffold"
    assert len(config["finetune"]["models"]) == 9 and "physchem-mmsa-rf" in config["finetune"]["models"]


@pytest.mark.parametrize(
    "pretrain", [{"dataset": "zinc", "corpus": {"zinc": 10}}, {"dataset": "corpus", "corpus": None}]
)
def test_a_mixture_described_but_unused_or_used_but_undescribed_is_named(pretrain):
    with pytest.raises(ConfigError, match=r"at 'pretrain.corpus'.*set both or neither"):
        validate_config({"pretrain": pretrain})


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
def test_shipped_configs_are_valid_and_need_nothing_beside_the_clone(name):
    config = load_config(REPO / "config" / name)  # raises ConfigError naming a bad key
    assert config["pretrain"]["dataset"] == ("zinc" if name == "test.yaml" else "corpus")  # others: a mixture
    pretraining = dataset_spec(config, config["pretrain"]["dataset"])
    assert pretraining.task_type == "none"  # the pretraining corpus has no labels
    sources = [dataset_spec(config, source) for source in pretraining.mixture]
    assert all(s.source == "registry" for s in sources)  # a mixture's sources install from archives too
    for dataset in config["finetune"]["datasets"]:
        spec = dataset_spec(config, dataset)
        assert spec.task_type in ("classification", "regression") and (spec.tasks or spec.tasks_from_all)
    # every dataset is fetched by the project itself, none read from a local folder
    assert not config["data"]["local_dir"] and not config["data"]["sources"]
    assert all(dataset_spec(config, d).source != "local" for d in all_datasets(config))


def test_shard_count_follows_size_and_limits():
    config = validate_config(
        {
            "data": {
                "shard_size": 1000,
                "max_rows": {"zinc": 2500},
                "sample_rows": {"hiv": 1500},
                "shards": {"bbbp": 7},
            }
        }
    )
    assert n_shards(config, "zinc") == 3
    assert n_shards(config, "hiv") == 2  # not 42 for its 41,127 rows
    assert n_shards(config, "bbbp") == 7
    assert n_shards(config, "esol") == 2  # 1,128 expected rows


def test_a_dataset_in_both_max_rows_and_sample_rows_is_named():
    data = {"max_rows": {"zinc": 10, "bbbp": 5}, "sample_rows": {"zinc": 10, "esol": 3}}
    with pytest.raises(
        ConfigError, match=r"at 'data.sample_rows.zinc': dataset 'zinc' is also in data.max_rows"
    ) as info:
        validate_config({"data": data})
    assert "bbbp" not in str(info.value) and "esol" not in str(info.value)


def test_only_a_sampled_dataset_carries_the_seed():
    config = validate_config({"seed": 7, "data": {"sample_rows": {"zinc": 100}, "max_rows": {"esol": 9}}})
    assert row_limit(config, "zinc") == RowLimit("sample", 100, 7)
    assert row_limit(config, "esol") == RowLimit("first", 9)
    assert row_limit(config, "bbbp") is None


def test_deep_merge_merges_nested_mappings():
    assert deep_merge({"a": {"b": 1, "c": 2}}, {"a": {"c": 3}}) == {"a": {"b": 1, "c": 3}}


def test_model_typo_is_caught_by_the_schema():
    with pytest.raises(ConfigError, match="pretrain.settings.model.*'gnn_dims' was unexpected"):
        validate_config({"pretrain": {"settings": {"model": {"gnn_dims": 8}}}})


def test_duplicate_policy_defaults_to_reject_and_is_off_without_dedupe():
    assert duplicate_policy(validate_config({})) == "reject"
    assert duplicate_policy(validate_config({"data": {"duplicate_labels": "first"}})) == "first"
    assert duplicate_policy(validate_config({"data": {"dedupe": False, "duplicate_labels": "first"}})) is None
    with pytest.raises(ConfigError, match="at 'data.duplicate_labels'"):
        validate_config({"data": {"duplicate_labels": "last"}})


@pytest.mark.parametrize(
    ("data", "where"),
    [
        ({"max_rows": {"zinx": 1000}}, "data.max_rows.zinx"),  # processed every ZINC row before
        ({"sample_rows": {"bbbq": 10}}, "data.sample_rows.bbbq"),
        ({"shards": {"tox22": 2}}, "data.shards.tox22"),
        ({"sources": {"tox": "local"}}, "data.sources.tox"),
    ],
)
def test_an_unknown_dataset_name_is_named_with_its_key(data, where):
    with pytest.raises(ConfigError, match=rf"at '{where}': unknown dataset '\w+'; known: bace, bbbp"):
        validate_config({"data": data})


def test_dataset_names_are_checked_against_registry_and_custom_datasets():
    custom = {
        "mine": {"source": "local", "smiles_column": "s", "task_type": "regression", "tasks": {"y": "y"}}
    }
    config = validate_config(
        {"data": {"custom": custom, "max_rows": {"mine": 5}}, "finetune": {"datasets": ["mine"]}}
    )
    assert config["data"]["max_rows"] == {"mine": 5}
    with pytest.raises(ConfigError, match=r"at 'finetune.datasets.1': unknown dataset 'bbbpp'"):
        validate_config({"finetune": {"datasets": ["bbbp", "bbbpp"]}})
    with pytest.raises(ConfigError, match=r"at 'pretrain.dataset': unknown dataset 'zinc15'"):
        validate_config({"pretrain": {"dataset": "zinc15"}})
    with pytest.raises(ConfigError, match=r"at 'data.sources.mine': 'mine' is a custom dataset"):
        validate_config({"data": {"custom": custom, "sources": {"mine": "url"}}})
    with pytest.raises(ConfigError, match=r"at 'data.custom.web': dataset web: url source needs a url"):
        validate_config({"data": {"custom": {"web": {**custom["mine"], "source": "url"}}}})


def test_a_finetuning_dataset_without_tasks_is_named():
    custom = {"bare": {"source": "local", "smiles_column": "s", "task_type": "regression"}}
    with pytest.raises(ConfigError) as info:
        validate_config({"data": {"custom": custom}, "finetune": {"datasets": ["zinc", "bbbp", "bare"]}})
    assert "at 'finetune.datasets.0': dataset 'zinc' has no tasks to finetune on" in str(info.value)
    assert "at 'finetune.datasets.2': dataset 'bare' has no tasks to finetune on" in str(info.value)
    assert "finetune.datasets.1" not in str(info.value)  # bbbp has its task


@pytest.mark.parametrize(
    ("fractions", "message"),
    [
        (
            [0.8, 0.1, 0.2],
            "at 'finetune.settings.split_fractions': frac must be three non-negative fractions summing to 1",
        ),
        (
            [1.0, 0.1, 0.1],
            "at 'finetune.settings.split_fractions.0': 1.0 is greater than or equal to the maximum of 1",
        ),
        (
            [0.9, 0.1, 0.0],
            "at 'finetune.settings.split_fractions.2': 0.0 is less than or equal to the minimum of 0",
        ),
    ],
)
def test_split_fractions_are_parts_of_one(fractions, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        validate_config({"finetune": {"settings": {"split_fractions": fractions}}})


def test_a_pretrained_model_without_the_gin_finetuning_needs_is_refused_before_pretraining():
    no_graph = {"pretrain": {"settings": {"model": {"use_graph": False}}}}
    with pytest.raises(
        ConfigError,
        match=re.escape(
            "at 'pretrain.settings.model.use_graph': finetune.models "
            "['mmsa', 'mmsa-labels', 'mmsa-graph'] finetune"
        ),
    ):
        validate_config(no_graph)
    validate_config({**no_graph, "finetune": {"models": ["no-pretrain", "ecfp-rf", "mmsa-probe"]}})


def test_schema_task_types_are_the_registry_s():
    from mmsa.data.registry import SOURCES, TASK_TYPES
    from mmsa.plan.schema import load_schema

    custom = load_schema()["properties"]["data"]["properties"]["custom"]["additionalProperties"]
    assert custom["properties"]["task_type"]["enum"] == list(TASK_TYPES)
    sources = load_schema()["properties"]["data"]["properties"]["sources"]["additionalProperties"]["enum"]
    assert sources == list(SOURCES)


def test_schema_default_models_are_the_compared_models_in_table_order():
    from mmsa.plan.compared_models import MODEL_NAMES
    from mmsa.plan.schema import load_schema

    models = load_schema()["properties"]["finetune"]["properties"]["models"]
    assert models["default"] == list(MODEL_NAMES)
    assert validate_config({})["finetune"]["models"] == list(MODEL_NAMES)
    with pytest.raises(ConfigError, match=r"at 'finetune.models': unknown model\(s\) \['mmsa-gin'\]"):
        validate_config({"finetune": {"models": ["mmsa", "mmsa-gin"]}})


def test_seeds_are_a_list_or_a_count_and_the_validated_config_holds_the_list():
    assert validate_config({})["finetune"]["seeds"] == [0, 1, 2]
    assert validate_config({"finetune": {"seeds": 5}})["finetune"]["seeds"] == [0, 1, 2, 3, 4]
    assert validate_config({"finetune": {"seeds": [4, 7]}})["finetune"]["seeds"] == [4, 7]
    again = validate_config(validate_config({"finetune": {"seeds": 2}}))
    assert again["finetune"]["seeds"] == [0, 1]
    assert validate_config({"finetune": {"settings": {"split": "scaffold_balanced"}}})
    for seeds, message in [
        (0, "at 'finetune.seeds': 0 is less than the minimum of 1"),
        ([], "at 'finetune.seeds': [] should be non-empty"),
        ([1, 1], "at 'finetune.seeds': [1, 1] has non-unique elements"),
        ("ten", "at 'finetune.seeds': 'ten' is not of type 'array', 'integer'"),
    ]:
        with pytest.raises(ConfigError, match=re.escape(message)):
            validate_config({"finetune": {"seeds": seeds}})


@pytest.mark.parametrize(
    ("override", "where"),
    [
        ({"finetune": {"settings": {"lr": float("inf")}}}, "finetune.settings.lr"),
        ({"pretrain": {"settings": {"lr": float("nan")}}}, "pretrain.settings.lr"),
        (
            {"finetune": {"settings": {"split_fractions": [0.8, 0.1, float("nan")]}}},
            "finetune.settings.split_fractions.2",
        ),
    ],
)
def test_a_setting_that_is_not_a_finite_number_is_named(override, where):
    """The schema's bounds let YAML's .inf and .nan through: lr .inf used to give NaN losses and a
    report without a metric."""
    with pytest.raises(ConfigError) as err:
        validate_config(override)
    assert f"at '{where}': not a finite number" in str(err.value)


@pytest.mark.parametrize("override", [{"seed": -1}, {"featurize": {"conformer": {"seed": -1}}}])
def test_a_negative_seed_is_refused(override):
    """RDKit reads a conformer seed of -1 as 'seed from the clock': features would change per run."""
    with pytest.raises(ConfigError, match="-1 is less than the minimum of 0"):
        validate_config(override)


def test_a_renamed_key_is_named_with_its_new_name():
    with pytest.raises(ConfigError, match=r"at 'finetune.hypergraph_k': renamed; use finetune.neighbours"):
        validate_config({"finetune": {"hypergraph_k": 5}})
    assert validate_config({"finetune": {"neighbours": 5}})["finetune"]["neighbours"] == 5
