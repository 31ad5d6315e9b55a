"""Featurizer settings and their fingerprint, which names the feature cache they fill.

Changing anything that changes the features (graph feature set, conformer or image settings,
this module's ``FEATURIZER_VERSION``, or the RDKit version) gives a new fingerprint and so a
fresh cache; features computed under other settings are never mixed in.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from rdkit import rdBase

from mmsa.features.conformer import ConformerOptions
from mmsa.features.graph import GRAPH_FEATURE_SETS
from mmsa.plan.config_slices import WORK_KEYS
from mmsa.runtime.from_mapping import from_mapping
from mmsa.runtime.hashing import settings_digest

FEATURIZER_VERSION = 5  # 2: packs list their file sizes; 3: embedding bounded by attempts, not seconds;
# 4: a fixed number of attempts per mode and no time-out failures (the feature is a function of counts);
# 5: packs hold the RDKit descriptors


@dataclass(frozen=True)
class FeatureSettings:
    """Everything that determines a molecule's features."""

    graph_features: str = "hu"
    conformer: ConformerOptions = field(default_factory=ConformerOptions)
    image_size: int = 64

    def __post_init__(self) -> None:
        if self.graph_features not in GRAPH_FEATURE_SETS:
            raise ValueError(f"graph_features must be one of {GRAPH_FEATURE_SETS}")
        if self.image_size < 16:
            raise ValueError(f"image_size must be at least 16 pixels, got {self.image_size}")

    @classmethod
    def from_dict(cls, cfg: Mapping[str, Any] | None) -> FeatureSettings:
        """Settings from the config's ``featurize`` section, whose ``chunk_size`` only splits the
        work (not part of the settings, so it never changes the cache)."""
        features = {k: v for k, v in (cfg or {}).items() if k not in WORK_KEYS}
        return from_mapping(cls, features, conformer=ConformerOptions.from_dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "graph_features": self.graph_features,
            "conformer": self.conformer.to_dict(),
            "image_size": self.image_size,
        }

    def record(self) -> dict[str, Any]:
        """The settings (less the conformer's last-resort guard), the featurizer version and the
        RDKit version: everything the features depend on, which a pretrained model records to be
        checked against (mmsa.plan.pretrained_weights)."""
        features = {**self.to_dict(), "conformer": self.conformer.feature_dict()}
        return {**features, "featurizer_version": FEATURIZER_VERSION, "rdkit": rdBase.rdkitVersion}

    def fingerprint(self) -> str:
        """Digest of :meth:`record`."""
        return settings_digest(self.record())
