"""Load a pipeline configuration and validate it against the JSON schema, filling defaults.

The schema (``mmsa/schemas/config.schema.yaml``, also linked from ``workflow/schemas``) lists
every key with its default and forbids unknown keys. All problems are reported at once, each
naming the offending key path, before any stage runs.
"""

from __future__ import annotations

import copy
import os
from importlib import resources
from typing import Any

import yaml
from jsonschema import Draft202012Validator, validators

SCHEMA_RESOURCE = "schemas/config.schema.yaml"


class ConfigError(ValueError):
    """The configuration does not match the schema."""


def load_schema() -> dict[str, Any]:
    """The configuration schema shipped with the package."""
    return yaml.safe_load(resources.files("mmsa").joinpath(SCHEMA_RESOURCE).read_text())


def _with_defaults(validator_class: type) -> type:
    """A validator that fills ``default`` values of absent properties before checking them."""
    check_properties = validator_class.VALIDATORS["properties"]

    def properties(validator: Any, props: dict, instance: Any, schema: dict) -> Any:
        if isinstance(instance, dict):
            for name, sub in props.items():
                if "default" in sub and name not in instance:
                    instance[name] = copy.deepcopy(sub["default"])
        yield from check_properties(validator, props, instance, schema)

    return validators.extend(validator_class, {"properties": properties})


_Validator = _with_defaults(Draft202012Validator)


def _where(error: Any) -> str:
    path = ".".join(str(p) for p in error.absolute_path)
    return path or "(top level)"


def _row_limit_errors(config: dict[str, Any]) -> list[str]:
    """Datasets limited both ways: the first N rows and a random sample cannot both hold."""
    data = config["data"]
    return [
        f"  - at 'data.sample_rows.{name}': dataset {name!r} is also in data.max_rows; "
        "take either its first rows or a random sample"
        for name in sorted(set(data["sample_rows"]) & set(data["max_rows"]))
    ]


def validate_config(config: dict[str, Any]) -> dict[str, Any]:
    """Return a validated copy of ``config`` with every default filled in.

    Rules across keys are checked once the schema holds, so they can rely on its types.
    """
    filled = copy.deepcopy(config)
    errors = sorted(_Validator(load_schema()).iter_errors(filled), key=lambda e: list(e.absolute_path))
    lines = [f"  - at '{_where(e)}': {e.message}" for e in errors] or _row_limit_errors(filled)
    if lines:
        raise ConfigError("invalid configuration:\n" + "\n".join(lines))
    return filled


def load_config(path: str | os.PathLike, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """Read a YAML config file, apply ``overrides`` (deep-merged) and validate it."""
    with open(path) as fh:
        config = yaml.safe_load(fh) or {}
    if not isinstance(config, dict):
        raise ConfigError(f"{path}: the top level of a config file must be a mapping")
    return validate_config(deep_merge(config, overrides or {}))


def deep_merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    """``base`` updated by ``extra``, merging nested mappings key by key."""
    merged = copy.deepcopy(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged
