"""Settings objects from config mappings, built the same way for every settings class.

The schema rejects unknown keys in a config file; code that builds settings from a mapping by
hand (tests, benchmarks, saved model configs) gets the same guarantee here: a key that is not a
field is an error naming the key and the class, never a silent fall-back to a default nor a bare
``TypeError`` from the constructor.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import fields
from typing import Any, TypeVar

T = TypeVar("T")


def from_mapping(cls: type[T], mapping: Mapping[str, Any] | None, **convert: Callable[[Any], Any]) -> T:
    """``cls(**mapping)`` for a dataclass ``cls``; absent keys take the field defaults.

    ``convert`` maps a field name to a function applied to that key's value when present (a
    nested settings object from its mapping, a tuple from a YAML list).
    """
    values = dict(mapping or {})
    known = {f.name for f in fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(values) - known)
    if unknown:
        raise ValueError(f"unknown {cls.__name__} setting(s) {unknown}; known: {sorted(known)}")
    for name, make in convert.items():
        if name in values:
            values[name] = make(values[name])
    return cls(**values)
