"""The configuration schema shipped with the package (``mmsa/schemas/config.schema.yaml``): every
key, its default and its meaning. Validation (:mod:`mmsa.plan.config`) and the rules' config
slices (:mod:`mmsa.plan.config_slices`) both read their key lists from it. One default is not
written in the file but taken from its one list: ``finetune.models``, every compared model
(:mod:`mmsa.plan.compared_models`) in table order."""

from __future__ import annotations

from functools import cache
from importlib import resources
from typing import Any

import yaml

from mmsa.plan.compared_models import MODEL_NAMES

SCHEMA_RESOURCE = "schemas/config.schema.yaml"


@cache
def _schema_text() -> str:
    return resources.files("mmsa").joinpath(SCHEMA_RESOURCE).read_text()


def load_schema() -> dict[str, Any]:
    """The schema as a fresh mapping (callers may change their copy)."""
    schema = yaml.safe_load(_schema_text())
    schema["properties"]["finetune"]["properties"]["models"]["default"] = list(MODEL_NAMES)
    return schema


def section_keys(section: str) -> tuple[str, ...]:
    """The keys of a top-level config section, in the schema's order."""
    return tuple(load_schema()["properties"][section]["properties"])
