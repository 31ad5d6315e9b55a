"""Which kind of model file a path holds, read once for every command that loads one.

The workflow writes two kinds of weights-only file: the pretrain stage's ``model.pt``
(:mod:`mmsa.models.pretrained_file`) and one finetuned model per dataset, model and seed
(:mod:`mmsa.models.property`). A user hands them to ``mmsa embed`` and ``mmsa predict``
by path, and a wrong path (a folder, a truncated copy, the other kind of model) should say so in
one line, naming the file, what it holds and what was expected, instead of a traceback from deep
inside torch. What a path's bytes tell without torch is checked in :mod:`mmsa.plan.model_paths`.
"""

from __future__ import annotations

import os
from typing import Any

import torch

from mmsa.plan.model_paths import FINETUNED, KINDS, PRETRAINED, ModelFileError, check_model_path

# The entries that tell the two kinds apart (save_pretrained and save_property_model write them).
_MARKS = {PRETRAINED: {"model_config", "state_dict"}, FINETUNED: {"meta", "state_dict"}}


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
    check_model_path(path, expected)
    wanted = KINDS[expected]
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
