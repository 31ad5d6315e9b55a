"""The configuration schema shipped with the package (``mmsa/schemas/config.schema.yaml``): every
key, its default and its meaning. Validation (:mod:`mmsa.plan.config`) and the rules' config
slices (:mod:`mmsa.plan.config_slices`) both read their key lists from it."""

from __future__ import annotations

from functools import cache
from importlib import resources
from typing import Any

import yaml

SCHEMA_RESOURCE = "schemas/config.schema.yaml"


@cache
def _schema_text() -> str:
    return resources.files("mmsa").joinpath(SCHEMA_RESOURCE).read_text()


def load_schema() -> dict[str, Any]:
    """The schema as a fresh mapping (callers may change their copy)."""
    return yaml.safe_load(_schema_text())


def section_keys(section: str) -> tuple[str, ...]:
    """The keys of a top-level config section, in the schema's order."""
    return tuple(load_schema()["properties"][section]["properties"])
