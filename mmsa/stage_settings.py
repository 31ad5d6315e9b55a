"""The settings objects the data stages build from a validated config.

Apart from :mod:`mmsa.plan.datasets` because building them imports RDKit, which the
Snakefile's process (that only plans jobs) must not load.
"""

from __future__ import annotations

from typing import Any

from mmsa.data.standardize import StandardizeOptions
from mmsa.features.settings import FeatureSettings


def feature_settings(config: dict[str, Any]) -> FeatureSettings:
    """The featurizer settings, which name the feature cache a config reads and fills."""
    return FeatureSettings.from_dict(config["featurize"])


def standardize_options(config: dict[str, Any]) -> StandardizeOptions:
    """How the standardize stage cleans molecules."""
    return StandardizeOptions.from_dict(config["data"]["standardize"])
