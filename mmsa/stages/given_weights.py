"""The given_weights stage: a pretrained ``model.pt`` given in the config (``pretrain.weights``)
checked in full against the config and copied into the run, in place of pretraining.

The check before any job runs (:func:`mmsa.plan.pretrained_weights.weights_errors`) reads the file
without torch; this one loads it into its model and compares everything the weights depend on.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from mmsa.models.mmsa import MMSAModel
from mmsa.models.mmsa_config import MMSAConfig
from mmsa.plan.pretrained_weights import (
    WeightsError,
    checked_weights,
    mismatches,
    recorded,
    refusal,
    settings_of,
    unreadable,
)
from mmsa.runtime.io import write_bytes, write_text
from mmsa.runtime.provenance import provenance
from mmsa.stages.finetune import gin_architecture
from mmsa.stages.inputs import feature_settings


def place_weights(
    config: Mapping[str, Any], weights: str | os.PathLike, out_dir: str | os.PathLike
) -> dict[str, Any]:
    """Check the model ``weights`` against ``config`` in full and copy it to ``out_dir/model.pt``,
    with ``config.json`` saying where it came from and its SHA-256.

    A copy, not a link: results/ then holds the very bytes that were checked and hashed even if
    the given file is replaced later (Snakemake sees that by its newer mtime and places it
    again), and the copy is new, so every job that read an older model.pt reruns. The bytes
    are read once, so the hash, the check and the copy are of the same content.
    """

    if not Path(weights).is_file():
        raise WeightsError(f"{weights}: no such file")
    data = Path(weights).read_bytes()
    try:
        loaded = torch.load(io.BytesIO(data), weights_only=True, map_location="cpu")
    except Exception as err:  # truncated, not torch's, unsafe pickle: torch raises many kinds
        raise unreadable(weights, err) from None
    loaded = checked_weights(loaded, weights)
    try:
        MMSAModel(MMSAConfig.from_dict(loaded["model_config"])).load_state_dict(loaded["state_dict"])
    except Exception as err:  # a config it does not fit, missing or misshapen tensors
        raise WeightsError(f"{weights}: its weights do not fit its model config ({err})") from None
    expected = settings_of(feature_settings(dict(config)).record(), gin_architecture(dict(config)))
    problems = mismatches(recorded(loaded), expected)
    if problems:
        raise WeightsError(refusal(weights, problems))
    out = Path(out_dir)
    write_bytes(data, out / "model.pt")
    record = {
        "weights": os.path.abspath(weights),
        "sha256": hashlib.sha256(data).hexdigest(),
        "model_config": loaded["model_config"],
        "features": loaded["features"],
        "provenance": provenance(),
    }
    write_text(json.dumps(record, indent=1) + "\n", out / "config.json")
    return record
