"""Every settings class: built from a mapping the same way, frozen, and defaulting to the schema."""

import dataclasses

import pytest
import yaml

from helpers import REPO
from mmsa.data.standardized_molecules import StandardizeOptions
from mmsa.features.conformer import ConformerOptions
from mmsa.features.settings import FeatureSettings
from mmsa.models.mmsa_config import GEO_ENCODERS, MMSAConfig
from mmsa.plan.config import validate_config
from mmsa.plan.finetune_settings import FinetuneSettings
from mmsa.train.loop import LoopSettings
from mmsa.train.pretrain_settings import PretrainSettings

BUILT_FROM_CONFIG = [
    StandardizeOptions,
    ConformerOptions,
    FeatureSettings,
    PretrainSettings,
    FinetuneSettings,
    MMSAConfig,
]


@pytest.mark.parametrize("cls", BUILT_FROM_CONFIG, ids=lambda c: c.__name__)
def test_an_unknown_key_is_named_with_its_class(cls):
    with pytest.raises(ValueError, match=rf"unknown {cls.__name__} setting\(s\) \['bogus_key'\]"):
        cls.from_dict({"bogus_key": 1})


@pytest.mark.parametrize("cls", [*BUILT_FROM_CONFIG, LoopSettings], ids=lambda c: c.__name__)
def test_settings_are_frozen(cls):
    settings = LoopSettings(1, 2, 0.1, 0.0, 0) if cls is LoopSettings else cls()
    first = dataclasses.fields(cls)[0].name
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(settings, first, getattr(settings, first))


def test_nested_and_converted_values_are_built():
    # chunk_size is in the featurize section but only splits the work
    features = FeatureSettings.from_dict({"conformer": {"seed": 3}, "chunk_size": 99})
    assert features.conformer == ConformerOptions(seed=3)
    with pytest.raises(ValueError, match=r"unknown ConformerOptions setting\(s\) \['sed'\]"):
        FeatureSettings.from_dict({"conformer": {"sed": 3}})
    assert FinetuneSettings.from_dict({"split_fractions": [0.6, 0.2, 0.2]}).split_fractions == (0.6, 0.2, 0.2)
    assert MMSAConfig.from_dict({"image_layers": [1, 2]}).image_layers == [1, 2]


# ---------------------------------------------------------------------------- defaults
# The schema's defaults, read from its YAML file here rather than through mmsa.plan.config, so the
# check does not lean on the code it checks.
SCHEMA = yaml.safe_load((REPO / "mmsa/schemas/config.schema.yaml").read_text())


def schema_section(*path: str) -> dict:
    section = SCHEMA
    for key in path:
        section = section["properties"][key]
    return section["properties"]


def schema_defaults(properties: dict) -> dict:
    """What validation fills in for an empty section: each key's default, an object defaulting to
    ``{}`` filled from its own keys' defaults."""
    filled = {}
    for name, prop in properties.items():
        if "default" not in prop:
            continue
        if prop["default"] == {} and "properties" in prop:
            filled[name] = schema_defaults(prop["properties"])
        else:
            filled[name] = prop["default"]
    return filled


def as_config(value):
    """A settings value as YAML would hold it (tuples are lists)."""
    if isinstance(value, dict):
        return {k: as_config(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [as_config(v) for v in value]
    return value


@pytest.mark.parametrize(
    ("cls", "path", "not_settings"),
    [
        (StandardizeOptions, ("data", "standardize"), set()),
        (ConformerOptions, ("featurize", "conformer"), set()),
        (FeatureSettings, ("featurize",), {"chunk_size"}),  # splits the work, changes no feature
        (PretrainSettings, ("pretrain", "settings"), set()),
        (FinetuneSettings, ("finetune", "settings"), set()),
    ],
    ids=lambda v: v.__name__ if isinstance(v, type) else None,
)
def test_settings_default_to_the_schema_and_cover_its_keys(cls, path, not_settings):
    properties = schema_section(*path)
    assert {f.name for f in dataclasses.fields(cls)} == set(properties) - not_settings
    defaults = {k: v for k, v in schema_defaults(properties).items() if k not in not_settings}
    assert as_config(dataclasses.asdict(cls())) == defaults


def test_the_model_s_defaults_live_in_mmsa_config_only():
    """The schema lists the model keys without defaults (so it cannot disagree with MMSAConfig),
    except the graph feature set, which comes from featurize.graph_features."""
    model = schema_section("pretrain", "settings", "model")
    assert [name for name, prop in model.items() if "default" in prop] == []
    assert MMSAConfig().feature_set == schema_section("featurize")["graph_features"]["default"]


def test_the_schema_lists_every_model_key_and_the_3d_encoders():
    model = schema_section("pretrain", "settings", "model")
    assert set(model) == {f.name for f in dataclasses.fields(MMSAConfig)} - {"feature_set"}
    assert model["geo_encoder"]["enum"] == list(GEO_ENCODERS)


def test_every_trainer_setting_in_the_config_reaches_the_trainer():
    given = {
        "epochs": 3,
        "batch_size": 7,
        "lr": 0.5,
        "weight_decay": 0.25,
        "warmup_fraction": 0.5,
        "grad_clip": 2.5,
        "amp": False,
        "amp_on_cpu": True,
        "loader_workers": 2,
        "shuffle_window": 3,
        "device": "cpu",
        "resume": False,
        "model": {"gnn_dim": 7, "geo_encoder": "comenet"},
    }
    settings = PretrainSettings.from_dict(
        validate_config({"pretrain": {"settings": given}})["pretrain"]["settings"]
    )
    defaults = PretrainSettings()
    for key, value in given.items():
        assert getattr(settings, key) == value != getattr(defaults, key), key
    model = MMSAConfig.from_dict(settings.model)
    assert (model.gnn_dim, model.geo_encoder) == (7, "comenet")
