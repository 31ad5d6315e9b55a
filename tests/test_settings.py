"""Every settings class: built from a mapping the same way, and frozen."""

import dataclasses

import pytest

from mmsa.data.standardize import StandardizeOptions
from mmsa.features.conformer import ConformerOptions
from mmsa.features.settings import FeatureSettings
from mmsa.models.mmsa import MMSAConfig
from mmsa.train.finetune import FinetuneSettings
from mmsa.train.loop import LoopSettings
from mmsa.train.pretrain import PretrainSettings

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
