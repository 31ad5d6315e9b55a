"""Load a pipeline configuration and validate it against the JSON schema, filling defaults.

The schema (``mmsa/schemas/config.schema.yaml``, also linked from ``workflow/schemas``) lists
every key with its default and forbids unknown keys. All problems are reported at once, each
naming the offending key path, before any stage runs.
"""

from __future__ import annotations

import copy
import math
import os
from pathlib import Path
from typing import Any

import yaml
from jsonschema import Draft202012Validator, validators

from mmsa.data.registry import CORPUS, REGISTRY
from mmsa.plan.compared_models import MODEL_NAMES, MODELS
from mmsa.plan.datasets import ROW_LIMITS, dataset_spec
from mmsa.plan.pretrained_weights import weights_errors
from mmsa.plan.schema import load_schema
from mmsa.plan.split_fractions import check_fractions


class ConfigError(ValueError):
    """The configuration does not match the schema."""


def _takes_null(schema: dict[str, Any]) -> bool:
    kind = schema.get("type")
    return kind == "null" or (isinstance(kind, list) and "null" in kind)


def _with_defaults(validator_class: type) -> type:
    """A validator that fills ``default`` values of absent properties before checking them.

    A ``null`` where the schema takes none also gets the default: Snakemake merges every
    config file onto ``config/default.yaml`` and a merge cannot remove a key, so a config that
    wants a key's default back (``config/test.yaml`` its ZINC pretraining, without the default
    job's mixture) sets it to null."""
    check_properties = validator_class.VALIDATORS["properties"]

    def properties(validator: Any, props: dict, instance: Any, schema: dict) -> Any:
        if isinstance(instance, dict):
            for name, sub in props.items():
                reset = name in instance and instance[name] is None and not _takes_null(sub)
                if "default" in sub and (name not in instance or reset):
                    instance[name] = copy.deepcopy(sub["default"])
        yield from check_properties(validator, props, instance, schema)

    return validators.extend(validator_class, {"properties": properties})


_Validator = _with_defaults(Draft202012Validator)


# Keys that were renamed: a config that still uses one is told the new name, not only that the
# key is unknown.
RENAMED = {
    ("finetune", "hypergraph_k"): "finetune.neighbours (the finetuning graphs' neighbours; "
    "pretrain.settings.model.hypergraph_k is the pretraining batch's)",
}


def _renamed_errors(config: dict[str, Any]) -> list[str]:
    """A line per renamed key ``config`` still uses, each taken out of ``config`` so that the
    schema does not name it a second time as an unknown key."""
    lines = []
    for (section, key), now in RENAMED.items():
        if isinstance(config.get(section), dict) and key in config[section]:
            del config[section][key]
            lines.append(f"  - at '{section}.{key}': renamed; use {now}")
    return lines


def _where(error: Any) -> str:
    path = ".".join(str(p) for p in error.absolute_path)
    return path or "(top level)"


def _model_errors(config: dict[str, Any]) -> list[str]:
    """Model names the comparison does not know (mmsa.plan.compared_models is their one list)."""
    unknown = [m for m in config["finetune"]["models"] if m not in MODEL_NAMES]
    if unknown:
        return [f"  - at 'finetune.models': unknown model(s) {unknown}; known: {list(MODEL_NAMES)}"]
    return []


def _dataset_errors(config: dict[str, Any]) -> list[str]:
    """Dataset names that are neither in the registry nor in ``data.custom`` (a typo such as
    ``max_rows: {zinx: 1000}`` would otherwise be ignored and every ZINC row processed), custom
    specs that cannot be built, a source override of a custom dataset (ignored otherwise), and
    finetuning datasets without tasks, all found before any job runs. The mixture's name is
    checked by :func:`_corpus_errors`."""
    data, custom = config["data"], config["data"]["custom"]
    known = f"known: {', '.join(sorted(REGISTRY))} and data.custom ({', '.join(sorted(custom)) or 'none'})"
    named = [(f"data.{key}.{name}", name) for key in ("sources", *ROW_LIMITS, "shards") for name in data[key]]
    named.append(("pretrain.dataset", config["pretrain"]["dataset"]))
    named += [(f"pretrain.corpus.{name}", name) for name in config["pretrain"]["corpus"]]
    named += [(f"finetune.datasets.{i}", name) for i, name in enumerate(config["finetune"]["datasets"])]
    errors = [
        f"  - at '{where}': unknown dataset {name!r}; {known}"
        for where, name in named
        if name not in REGISTRY and name not in custom and name != CORPUS  # CORPUS: _corpus_errors
    ]
    errors += [
        f"  - at 'data.sources.{name}': {name!r} is a custom dataset; set data.custom.{name}.source instead"
        for name in sorted(set(data["sources"]) & set(custom))
    ]
    for name in custom:
        try:
            dataset_spec(config, name)
        except ValueError as err:
            errors.append(f"  - at 'data.custom.{name}': {err}")
    for i, name in enumerate(config["finetune"]["datasets"]):
        if name in REGISTRY or name in custom:
            try:
                spec = dataset_spec(config, name)
            except ValueError:
                continue  # reported above
            if spec.task_type == "none" or not (spec.tasks or spec.tasks_from_all):
                errors.append(
                    f"  - at 'finetune.datasets.{i}': dataset {name!r} has no tasks to finetune on "
                    f"(task_type {spec.task_type!r}, tasks {spec.tasks or 'none'})"
                )
    return errors


def _corpus_errors(config: dict[str, Any]) -> list[str]:
    """A mixture named but not described (or described but not used), and the mixture's name
    where it cannot stand: its size is set by its counts, its source is the mixture, and it has
    no tasks."""
    pretrain, data = config["pretrain"], config["data"]
    errors = []
    if (pretrain["dataset"] == CORPUS) != bool(pretrain["corpus"]):
        errors.append(
            f"  - at 'pretrain.corpus': pretrain.dataset {CORPUS!r} is the mixture that pretrain.corpus "
            "describes (source dataset: rows); set both or neither (pretrain.dataset is "
            f"{pretrain['dataset']!r}, pretrain.corpus {pretrain['corpus'] or 'empty'})"
        )
    if CORPUS in pretrain["corpus"]:
        errors.append(f"  - at 'pretrain.corpus.{CORPUS}': the mixture cannot be one of its own sources")
    for key in ("custom", "sources", *ROW_LIMITS):
        if CORPUS in data[key]:
            errors.append(
                f"  - at 'data.{key}.{CORPUS}': {CORPUS!r} is the pretraining mixture; "
                "its sources and their row counts are set in pretrain.corpus"
            )
    errors += [
        f"  - at 'finetune.datasets.{i}': {CORPUS!r} is the unlabelled pretraining mixture"
        for i, name in enumerate(config["finetune"]["datasets"])
        if name == CORPUS
    ]
    return errors


def _finetune_errors(config: dict[str, Any]) -> list[str]:
    """Settings that would only fail once pretraining is done: split fractions that are not
    three parts of 1 (the split's own check), and a pretrained model without the GIN that the
    finetuned pretrained models start from."""
    errors = []
    try:
        check_fractions(config["finetune"]["settings"]["split_fractions"])
    except ValueError as err:
        errors.append(f"  - at 'finetune.settings.split_fractions': {err}")
    if config["pretrain"]["settings"]["model"].get("use_graph") is False:
        models = [MODELS[m] for m in config["finetune"]["models"] if m in MODELS]  # others: _model_errors
        need = [m.name for m in models if "weights" in m.reads]
        if need:
            errors.append(
                f"  - at 'pretrain.settings.model.use_graph': finetune.models {need} finetune the "
                "pretrained GIN, which use_graph: false leaves out"
            )
    return errors


def _row_limit_errors(config: dict[str, Any]) -> list[str]:
    """Datasets limited both ways: the first N rows and a random sample cannot both hold."""
    data = config["data"]
    return [
        f"  - at 'data.sample_rows.{name}': dataset {name!r} is also in data.max_rows; "
        "take either its first rows or a random sample"
        for name in sorted(set(data["sample_rows"]) & set(data["max_rows"]))
    ]


def _non_finite(value: Any, where: str) -> list[str]:
    """The places under ``value`` that hold NaN or an infinity (YAML's ``.nan``, ``.inf``)."""
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in _non_finite(v, f"{where}.{k}" if where else str(k))]
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in _non_finite(v, f"{where}.{i}")]
    return [where] if isinstance(value, float) and not math.isfinite(value) else []


def _finite_errors(config: dict[str, Any]) -> list[str]:
    """No setting is NaN or infinite: the schema's bounds let ``.inf`` through, and a learning
    rate of ``.inf`` gives a run of NaN losses and no metric at all."""
    return [f"  - at '{where}': not a finite number" for where in _non_finite(config, "")]


def validate_config(config: dict[str, Any]) -> dict[str, Any]:
    """Return a validated copy of ``config`` with every default filled in.

    Rules across keys are checked once the schema holds, so they can rely on its types.
    """
    filled = copy.deepcopy(config)
    renamed = _renamed_errors(filled)
    errors = sorted(_Validator(load_schema()).iter_errors(filled), key=lambda e: list(e.absolute_path))
    lines = renamed + [f"  - at '{_where(e)}': {e.message}" for e in errors]
    if not lines:
        seeds = filled["finetune"]["seeds"]
        if isinstance(seeds, int):  # a count: stages and rules always see the list
            filled["finetune"]["seeds"] = list(range(seeds))
        checks = (
            _finite_errors,
            _row_limit_errors,
            _model_errors,
            _corpus_errors,
            _dataset_errors,
            _finetune_errors,
            weights_errors,  # given pretrained weights for other features or another GIN
        )
        lines = [line for check in checks for line in check(filled)]
    if len(lines) == 1:  # one line for one mistake
        raise ConfigError("invalid configuration: " + lines[0].removeprefix("  - "))
    if lines:
        raise ConfigError("invalid configuration:\n" + "\n".join(lines))
    return filled


def load_config(path: str | os.PathLike, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """Read a YAML config file, apply ``overrides`` (deep-merged) and validate it.

    A file that is missing, unreadable or not plain YAML is a :class:`ConfigError` naming the file
    (and the line, for YAML); tags that build Python objects (``!!python/...``) are refused by
    the safe loader before anything is constructed.
    """
    config = yaml_file(path) or {}
    if not isinstance(config, dict):
        raise ConfigError(f"{path}: the top level of a config file must be a mapping")
    return validate_config(deep_merge(config, overrides or {}))


def yaml_file(path: str | os.PathLike) -> Any:
    """The plain YAML data of ``path``, or a :class:`ConfigError` saying why there is none."""
    if Path(path).is_dir():
        raise ConfigError(f"{path}: a folder, not a config file")
    try:
        with open(path, encoding="utf-8") as fh:
            return yaml.safe_load(fh)
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such config file") from None
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError(f"{path}: cannot be read ({err})") from None
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        if isinstance(err, yaml.constructor.ConstructorError):
            problem += " (a config file holds plain YAML values, no tags that build objects)"
        raise ConfigError(f"{path}: not a valid YAML config{where}: {problem}") from None


def deep_merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    """``base`` updated by ``extra``, merging nested mappings key by key."""
    merged = copy.deepcopy(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged
