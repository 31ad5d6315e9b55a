"""New molecules featurized as a model's training molecules were.

A model runs on any features of the right shape: the image encoder pools any image size and a
conformer made with other settings has the same shape, so ``mmsa embed`` or ``mmsa predict``
featurizing with a config other than the model's own would give quietly different numbers (the
README's ``mmsa embed`` without ``--config`` read ``config/default.yaml``'s 64-pixel images for a
model trained on 32). Every model file records the feature settings it was trained on
(:meth:`FeatureSettings.record <mmsa.features.settings.FeatureSettings.record>`), so the commands
featurize with those, and say in one line which settings of the config they set aside. Features
of another featurizer or RDKit version cannot be made here: that is an error.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from mmsa.plan.config import validate_config
from mmsa.plan.pretrained_weights import VERSIONS, mismatches, settings_of
from mmsa.runtime.errors import InputError
from mmsa.stages.inputs import feature_settings

log = logging.getLogger(__name__)


def featurized_as(config: dict[str, Any], record: Mapping[str, Any] | None, model: str) -> dict[str, Any]:
    """``config`` with the feature settings of ``record`` (a model's, named ``model`` in messages);
    ``config`` itself, with a warning, for a model saved before models recorded them."""
    if record is None:
        log.warning("%s records no feature settings (an older mmsa saved it): using the config's", model)
        return config
    here = feature_settings(config).record()
    for key, name in VERSIONS.items():
        if record.get(key) != here[key]:
            raise InputError(
                f"{model} was trained on features of {name} {record.get(key)!r}, and this mmsa makes "
                f"those of {here[key]!r}; use the mmsa it was trained with, or train it again here"
            )
    differ = mismatches(settings_of(record, {}), settings_of(here, {}))
    if not differ:
        return config
    log.warning(
        "featurizing as %s was trained, not as the config says (%s)",
        model,
        "; ".join(d.replace(" here", " in the config") for d in differ),
    )
    featurize = config["featurize"]
    features = {key: record[key] for key in ("graph_features", "image_size")}
    conformer = {**featurize["conformer"], **record["conformer"]}
    return validate_config({**config, "featurize": {**featurize, **features, "conformer": conformer}})
