"""The pretrained model's file: its config, a plain state dict and the features it was trained on,
saved weights-only so that loading it unpickles no code."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import torch

from mmsa.models.mmsa import MMSAModel
from mmsa.models.mmsa_config import MMSAConfig
from mmsa.models.model_files import PRETRAINED, load_model_file
from mmsa.runtime.io import save_torch


def save_pretrained(model: MMSAModel, path: str | os.PathLike, features: Mapping[str, Any]) -> None:
    """The pretrained model as a weights-only file: its config, a plain state dict and
    ``features``, the record of the featurizer settings it was trained on
    (:meth:`mmsa.features.settings.FeatureSettings.record`), so that a finetuning run given the
    file (``pretrain.weights``) can check that its own features are the ones the weights fit."""
    weights = {
        "model_config": model.config.to_dict(),
        "features": dict(features),
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
    }
    save_torch(weights, path)


def pretrained_model(weights: Mapping[str, Any], device: torch.device | str = "cpu") -> MMSAModel:
    """The model of a pretrained file's contents (:func:`load_model_file`), in evaluation mode."""
    model = MMSAModel(MMSAConfig.from_dict(weights["model_config"]))
    model.load_state_dict(weights["state_dict"])
    return model.to(device).eval()


def load_pretrained(path: str | os.PathLike, device: torch.device | str = "cpu") -> MMSAModel:
    """A model saved by :func:`save_pretrained`, in evaluation mode (no code is unpickled); any
    other file is a :class:`~mmsa.plan.model_paths.ModelFileError` saying what it is."""
    return pretrained_model(load_model_file(path, PRETRAINED), device)
