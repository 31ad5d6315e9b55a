"""Which kind of model file a path holds, read once for every command that loads one.

The workflow writes two kinds of weights-only file: the pretrain stage's ``model.pt``
(:mod:`mmsa.models.pretrained_file`) and one finetuned model per dataset, model and seed
(:mod:`mmsa.models.property`). A user hands them to ``mmsa embed`` and ``mmsa predict``
by path, and a wrong path (a folder, a truncated copy, the other kind of model) should say so in
one line, naming the file, what it holds and what was expected, instead of a traceback from deep
inside torch.
"""

from __future__ import annotations

import os
import zipfile
from pathlib import Path
from typing import Any

import torch

from mmsa.runtime.errors import InputError

PRETRAINED = "pretrained"
FINETUNED = "finetuned"
KINDS = {
    PRETRAINED: "a pretrained model (the pretrain stage's results/pretrain/model.pt)",
    FINETUNED: "a finetuned model (results/finetune/<dataset>/<model>/seed-<n>.pt)",
}
# the finetune rule's weights (workflow/rules/finetune.smk), one per seed of a dataset's model folder
SEED_WEIGHTS = "seed-*.pt"
# The entries that tell the two kinds apart (save_pretrained and save_property_model write them).
_MARKS = {PRETRAINED: {"model_config", "state_dict"}, FINETUNED: {"meta", "state_dict"}}
ZIP_MAGIC = b"PK\x03\x04"  # torch.save writes a zip archive


class ModelFileError(InputError):
    """A path given as a model is not a model file of the expected kind."""


def seed_of(path: str | os.PathLike) -> int:
    """The seed of a finetuning job's file (``seed-<n>.pt``, ``seed-<n>.predictions.parquet``, ...)."""
    return int(Path(path).name.split(".")[0].removeprefix("seed-"))


def seed_weight_files(folder: str | os.PathLike) -> list[Path]:
    """The seed models of a dataset's model folder (:data:`SEED_WEIGHTS`), in seed order."""
    return sorted(Path(folder).glob(SEED_WEIGHTS), key=seed_of)


def model_kind(saved: Any) -> str | None:
    """:data:`PRETRAINED` or :data:`FINETUNED` for what ``torch.load`` read, ``None`` for
    anything else."""
    if isinstance(saved, dict):
        for kind, marks in _MARKS.items():
            if marks <= set(saved):
                return kind
    return None


def load_model_file(path: str | os.PathLike, expected: str) -> dict[str, Any]:
    """The contents of the model file at ``path`` (weights only: no code is unpickled), which
    must be of the ``expected`` kind; otherwise a :class:`ModelFileError` saying what it is."""
    path = Path(path)
    wanted = KINDS[expected]
    if path.is_dir():
        raise ModelFileError(f"{path}: a folder, not a model file; expected {wanted}")
    if not path.is_file():
        raise ModelFileError(f"{path}: no such file; expected {wanted}")
    damage = _not_torch_archive(path)
    if damage:
        raise ModelFileError(f"{path}: {damage}; expected {wanted}")
    try:
        saved = torch.load(path, weights_only=True, map_location="cpu")
    except Exception as err:  # a damaged member, a foreign pickle: torch raises many kinds
        reason = str(err).strip().splitlines()[0][:200] if str(err).strip() else type(err).__name__
        raise ModelFileError(
            f"{path}: not a readable model file (torch cannot load it: {reason}); expected {wanted}"
        ) from None
    kind = model_kind(saved)
    if kind != expected:
        what = KINDS[kind] if kind else "a torch file that mmsa did not write"
        raise ModelFileError(f"{path}: {what}, not {wanted}")
    return saved


def _not_torch_archive(path: Path) -> str | None:
    """What is wrong with ``path`` as a ``torch.save`` archive, told from its bytes (torch's own
    errors for these say little), or ``None`` when it is a complete zip archive."""
    with open(path, "rb") as fh:
        start = fh.read(len(ZIP_MAGIC))
    size = f"{path.stat().st_size:,} bytes"
    if start != ZIP_MAGIC:
        return f"not a model file ({size} that do not start as a torch file does)"
    if not zipfile.is_zipfile(path):
        return f"a truncated or damaged torch file ({size}: it starts as one, but its end is missing)"
    return None
