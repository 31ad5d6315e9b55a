"""The ``mmsa`` command line as a subprocess, and tiny model files for ``mmsa embed`` and
``mmsa predict`` (random weights: these tests are about input handling, not model quality)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import torch
import yaml

from helpers import SMALL_FEATURES, TINY_MODEL
from mmsa.features.settings import FeatureSettings
from mmsa.models.pretrained_file import save_pretrained
from mmsa.models.property import PropertyModel, build_gin, save_property_model
from mmsa.train.pretrain_loop import build_model
from mmsa.train.pretrain_settings import PretrainSettings


def mmsa_cli(workdir: Path, *args: object) -> subprocess.CompletedProcess:
    """Run the ``mmsa`` command line in ``workdir``."""
    cmd = [sys.executable, "-m", "mmsa.cli", *map(str, args)]
    return subprocess.run(cmd, cwd=workdir, capture_output=True, text=True)


def tiny_models(folder: Path) -> tuple[Path, Path, Path]:
    """A config file, a pretrained model and a finetuned single-task classifier (``no-pretrain``,
    so ``--pretrained`` is not needed). The config's features and cache folder are those of
    :func:`chain.toy_config` on the same ``folder``, so the two share computed features."""
    folder.mkdir(parents=True, exist_ok=True)
    config = folder / "config.yaml"
    config.write_text(yaml.safe_dump({"cache_dir": str(folder / "cache"), "featurize": SMALL_FEATURES}))
    torch.manual_seed(0)
    pretrained = build_model(PretrainSettings.from_dict({"model": TINY_MODEL}), "hu")
    save_pretrained(pretrained, folder / "pretrained.pt", FeatureSettings.from_dict(SMALL_FEATURES).record())
    arch = pretrained.config.to_dict()
    meta = {
        "model": "no-pretrain",
        "dataset": "toy",
        "task_type": "classification",
        "target_mean": [0.0],
        "target_std": [1.0],
        "arch": arch,
        "dropout": 0.5,
        "tasks": ["y"],
        # what the finetune stage records of where a model came from (mmsa.stages.finetune)
        "seed": 0,
        "features": FeatureSettings.from_dict(SMALL_FEATURES).record(),
        "pretrained_sha256": None,
        "run": "tiny",
    }
    save_property_model(PropertyModel(build_gin(arch, 0.5), 1), meta, folder / "finetuned.pt")
    return config, folder / "pretrained.pt", folder / "finetuned.pt"
