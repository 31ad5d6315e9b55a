"""Where the workflow's model files are, what they are called, and what a path given as one
can be told to be without torch: the checks ``mmsa embed`` and ``mmsa predict`` run before
torch is imported, so a wrong ``--model`` costs a user no wait.

The workflow writes two kinds of weights-only file: the pretrain stage's ``model.pt`` and one
finetuned model per dataset, model and seed (``seed-<n>.pt`` in the dataset's model folder).
Loading them (and telling the kinds apart by their contents) is :mod:`mmsa.models.model_files`.
"""

from __future__ import annotations

import os
import re
import zipfile
from pathlib import Path

from mmsa.runtime.errors import InputError
from mmsa.runtime.output_set import TORCH_ARCHIVE_MAGIC

PRETRAINED = "pretrained"
FINETUNED = "finetuned"
KINDS = {
    PRETRAINED: "a pretrained model (the pretrain stage's results/pretrain/model.pt)",
    FINETUNED: "a finetuned model (results/finetune/<dataset>/<model>/seed-<n>.pt)",
}
# the finetune rule's weights (workflow/rules/finetune.smk), one per seed of a dataset's model folder
SEED_WEIGHTS = "seed-*.pt"
SEED_FILE = re.compile(r"seed-(\d+)\.")  # seed-<n>.pt, seed-<n>.predictions.parquet, ...
SEED_MODEL = re.compile(r"seed-(\d+)\.pt")


class ModelFileError(InputError):
    """A path given as a model is not a model file of the expected kind."""


def seed_of(path: str | os.PathLike) -> int:
    """The seed of a finetuning job's file (``seed-<n>.pt``, ``seed-<n>.predictions.parquet``, ...)."""
    name = Path(path).name
    match = SEED_FILE.match(name)
    if match is None:
        raise ModelFileError(f"{path}: not named seed-<n>.<ending>, so it belongs to no seed")
    return int(match.group(1))


def seed_weight_files(folder: str | os.PathLike) -> list[Path]:
    """The seed models of a dataset's model folder (``seed-<n>.pt``), in seed order.

    Any other ``.pt`` file there (``Seed-3.pt``, ``seed-1-copy.pt``) is a
    :class:`ModelFileError`: left out, it would be a model the user meant to use and did not;
    read, it could be a copy of another seed's."""
    files = [p for p in Path(folder).iterdir() if p.suffix.lower() in (".pt", ".pth")]
    stray = sorted(p.name for p in files if not SEED_MODEL.fullmatch(p.name))
    if stray:
        raise ModelFileError(
            f"--model {folder}: holds {', '.join(stray)}, not named seed-<n>.pt like a seed's model; "
            "move or rename it, or give one model file"
        )
    return sorted(files, key=seed_of)


def archive_problem(path: Path) -> str | None:
    """What is wrong with ``path`` as a ``torch.save`` archive, told from its bytes (torch's own
    errors for these say little), or ``None`` when it is a complete zip archive."""
    with open(path, "rb") as fh:
        start = fh.read(len(TORCH_ARCHIVE_MAGIC))
    size = f"{path.stat().st_size:,} bytes"
    if start != TORCH_ARCHIVE_MAGIC:
        return f"not a model file ({size} that do not start as a torch file does)"
    if not zipfile.is_zipfile(path):
        return f"a truncated or damaged torch file ({size}: it starts as one, but its end is missing)"
    return None


def check_model_path(path: str | os.PathLike, expected: str, folder_ok: bool = False) -> None:
    """A :class:`ModelFileError` unless ``path`` is a complete torch archive (or, with
    ``folder_ok``, a folder, whose seed models are checked when loaded)."""
    path = Path(path)
    wanted = KINDS[expected]
    if path.is_dir():
        if folder_ok:
            return
        raise ModelFileError(f"{path}: a folder, not a model file; expected {wanted}")
    if not path.is_file():
        raise ModelFileError(f"{path}: no such file; expected {wanted}")
    damage = archive_problem(path)
    if damage:
        raise ModelFileError(f"{path}: {damage}; expected {wanted}")
