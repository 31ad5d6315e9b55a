"""Pretrained weights as an input (``pretrain.weights``): one ``model.pt``, pretrained once (on
a GPU, a cluster, or by a long CPU run), serves many finetuning runs.

A model that was trained on other features would still load and run on this config's features
(the image encoder pools any image size, a conformer made with other settings has the same
shape) and give quietly different numbers; one with another GIN would not even load into the
finetuned network. So a ``model.pt`` records what its weights depend on (:func:`save_pretrained
<mmsa.models.pretrained_file.save_pretrained>`): its model config and the featurizer settings it was
trained on (:meth:`FeatureSettings.record <mmsa.features.settings.FeatureSettings.record>`,
everything the feature cache's fingerprint digests), and a given file is refused, each setting
that differs named, unless they are this config's.

The check runs twice over one comparison (:func:`mismatches`):

* at config validation, in the process that plans the jobs, so before any job runs: the file's
  pickle is read without torch (its tensors skipped) and compared with what the config states
  (every feature setting, and the GIN settings the config sets);
* in the ``given_weights`` job (:mod:`mmsa.stages.given_weights`), which every job reading the
  pretrained model waits for: the file is loaded with torch (a file that does not load into its
  model is refused) and compared with everything, including the GIN defaults the config leaves
  to MMSAConfig and the featurizer and RDKit versions, which that process cannot read without
  torch and RDKit.

This module imports neither: the Snakefile's process runs the first check.
"""

from __future__ import annotations

import collections
import io
import os
import pickle
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mmsa.plan.config_slices import CONFORMER_GUARDS, FEATURES, GIN_KEYS
from mmsa.runtime.errors import InputError

KEY = "pretrain.weights"
PLACED = Path("results/pretrain/model.pt")  # where the given_weights rule copies it (the run's folder)
# What a model.pt records besides its config paths; named in messages as these.
VERSIONS = {"featurizer_version": "the featurizer version", "rdkit": "the RDKit version"}


class WeightsError(InputError):
    """A given pretrained model cannot be used: missing, unreadable, or trained for other
    features or another GIN than the config's."""


class _Skipped:
    """Stands in for every torch object of the pickle (tensors, storages, dtypes): the check
    reads only the plain records beside them."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    def __setstate__(self, state: Any) -> None:
        pass


class _RecordUnpickler(pickle.Unpickler):
    """Unpickles plain data and skips torch's objects; any other class is refused, so reading
    an untrusted file runs no code (as ``torch.load(weights_only=True)`` does)."""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) == ("collections", "OrderedDict"):
            return collections.OrderedDict
        if module == "torch" or module.startswith("torch."):
            return _Skipped
        raise pickle.UnpicklingError(f"{module}.{name} has no place in a weights file")

    def persistent_load(self, pid: Any) -> None:  # a tensor's storage, kept apart in the archive
        return None


def checked_weights(weights: Any, path: str | os.PathLike) -> dict[str, Any]:
    """``weights`` if they are a pretrained model with its records (else a WeightsError)."""
    if not isinstance(weights, dict) or not {"model_config", "state_dict"} <= set(weights):
        raise WeightsError(f"{path}: not a pretrained model that mmsa saved (no model_config and state_dict)")
    if "features" not in weights:
        raise WeightsError(
            f"{path}: records no feature settings (saved by an mmsa from before they were recorded), "
            "so it cannot be checked against this config; pretrain it again"
        )
    return weights


def unreadable(path: str | os.PathLike, err: Exception) -> WeightsError:
    """The error for a file that torch (or the torch-free reader) cannot read."""
    return WeightsError(f"{path}: not a readable torch weights file ({type(err).__name__}: {err})")


def read_record(path: str | os.PathLike) -> dict[str, Any]:
    """The records of a ``model.pt`` (``model_config``, ``features``), read without torch."""
    if not Path(path).is_file():
        raise WeightsError(f"{path}: no such file")
    try:
        with zipfile.ZipFile(path) as archive:  # torch.save's format: <folder>/data.pkl + tensors
            pickles = [n for n in archive.namelist() if n.endswith("/data.pkl")]
            if len(pickles) != 1:
                raise WeightsError(f"{path}: not a torch weights file (no data.pkl in the archive)")
            weights = _RecordUnpickler(io.BytesIO(archive.read(pickles[0]))).load()
    except WeightsError:
        raise
    except Exception as err:  # not a zip, truncated, a foreign pickle: many kinds
        raise unreadable(path, err) from None
    return {k: v for k, v in checked_weights(weights, path).items() if k != "state_dict"}


def _flat(mapping: Mapping[str, Any], prefix: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in mapping.items():
        if isinstance(value, Mapping):
            out.update(_flat(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def settings_of(features: Mapping[str, Any], model: Mapping[str, Any]) -> dict[str, Any]:
    """Feature settings (and versions) and GIN settings as ``{config path: value}``, the form
    in which a model's records and a config's settings are compared."""
    flat = {VERSIONS[k]: v for k, v in features.items() if k in VERSIONS}
    flat.update(_flat({k: v for k, v in features.items() if k not in VERSIONS}, "featurize."))
    flat.update({f"pretrain.settings.model.{k}": model[k] for k in GIN_KEYS if k in model})
    return flat


def recorded(weights: Mapping[str, Any]) -> dict[str, Any]:
    """The settings a model's records give (:func:`settings_of` form)."""
    return settings_of(weights["features"], weights["model_config"])


def config_settings(config: Mapping[str, Any]) -> dict[str, Any]:
    """What a validated config states of the settings a model records, without torch or RDKit:
    every feature setting (the schema fills them in), and the GIN settings it sets."""
    featurize = {p[1]: config["featurize"][p[1]] for p in FEATURES if p[0] == "featurize"}
    conformer = featurize["conformer"]
    featurize["conformer"] = {k: v for k, v in conformer.items() if k not in CONFORMER_GUARDS}
    return settings_of(featurize, config["pretrain"]["settings"]["model"])


def mismatches(model: Mapping[str, Any], expected: Mapping[str, Any]) -> list[str]:
    """Each expected setting that the model's records (``model``) give otherwise, as
    "name: X in the model, Y here"."""
    return [
        f"{name}: {repr(model[name]) if name in model else 'nothing'} in the model, {value!r} here"
        for name, value in expected.items()
        if name not in model or model[name] != value
    ]


def refusal(path: str | os.PathLike, problems: list[str]) -> str:
    """The message refusing a model trained for other settings, naming each one."""
    return (
        f"{path} was pretrained for other features or another GIN than this config's ("
        + "; ".join(problems)
        + "); set them as the model has them, or pretrain here (pretrain.weights: null)"
    )


def weights_errors(config: Mapping[str, Any]) -> list[str]:
    """The config-validation check of ``pretrain.weights`` (none when it is null)."""
    path = config["pretrain"]["weights"]
    if path is None:
        return []
    if Path(path).resolve() == PLACED.resolve():  # Snakemake would find the rule's input its output
        return [f"  - at '{KEY}': {path} is where this run places the given model; copy it elsewhere first"]
    try:
        record = read_record(path)
        problems = mismatches(recorded(record), config_settings(config))
    except WeightsError as err:
        return [f"  - at '{KEY}': {err}"]
    return [f"  - at '{KEY}': {refusal(path, problems)}"] if problems else []
