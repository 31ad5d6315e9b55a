"""What the stages build from a validated config besides the config itself: the settings
objects of the data stages, and a dataset's feature store and shard files for the model stages.

Apart from :mod:`mmsa.plan` because building them imports RDKit, which the Snakefile's process
(that only plans jobs) must not load.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mmsa.data.standardized_molecules import StandardizeOptions
from mmsa.features.cache import FeatureCache
from mmsa.features.settings import FeatureSettings

if TYPE_CHECKING:
    from mmsa.features.loader import FeatureStore


def feature_settings(config: dict[str, Any]) -> FeatureSettings:
    """The featurizer settings, which name the feature cache a config reads and fills."""
    return FeatureSettings.from_dict(config["featurize"])


def standardize_options(config: dict[str, Any]) -> StandardizeOptions:
    """How the standardize stage cleans molecules."""
    return StandardizeOptions.from_dict(config["data"]["standardize"])


def feature_store(config: dict[str, Any], manifests: Sequence[str | os.PathLike]) -> FeatureStore:
    """The features of a dataset's molecules, read lazily from the config's feature cache."""
    from mmsa.features.loader import FeatureStore, read_manifests  # torch: not for the data stages

    return FeatureStore(
        FeatureCache(config["cache_dir"], feature_settings(config)), read_manifests(manifests)
    )


def shard_files(shards_dir: str | os.PathLike) -> list[str]:
    """A dataset's shard files in shard order."""
    return sorted(str(p) for p in Path(shards_dir).glob("shard-*.parquet"))
