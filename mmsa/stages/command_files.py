"""The files of ``mmsa embed`` and ``mmsa predict``, checked before torch is imported: the SMILES
file and the model paths exist and are what they should be, and the output set
(:mod:`mmsa.runtime.output_set`: the output, its rejects and neighbours tables) destroys no file
and can be written. A wrong path then costs the user no wait for torch, the models or the
featurization; the commands' stages run the same checks again (they are cheap) when called as
functions.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from mmsa.data.raw_table import readable_file
from mmsa.plan.model_paths import FINETUNED, PRETRAINED, ModelFileError, check_model_path
from mmsa.runtime.output_set import OutputSet, output_set

REJECTS_SUFFIX = ".rejects.csv"
NEIGHBOURS_SUFFIX = ".neighbours.csv"
SMILES_FILE = "the SMILES file"
Path_ = str | os.PathLike


T = TypeVar("T")


def given_as(option: str, read: Callable[[Path], T], path: Path_) -> T:
    """``read(path)``; a :class:`ModelFileError` it raises names ``option`` (``--model``,
    ``--pretrained``), so the line says which argument was wrong."""
    try:
        return read(Path(path))
    except ModelFileError as err:
        raise ModelFileError(f"{option} {err}") from None


def _model(option: str, path: Path_, expected: str, folder_ok: bool = False) -> None:
    given_as(option, lambda p: check_model_path(p, expected, folder_ok), path)


def checked_embed_files(smiles: Path_, model: Path_, out: Path_, config: Path_ | None = None) -> OutputSet:
    """The checked files of ``mmsa embed``: Parquet output and ``<out>.rejects.csv``."""
    readable_file(smiles)
    _model("--model", model, PRETRAINED)
    inputs = {SMILES_FILE: smiles, "--model": model, "--config": config}
    return output_set(out, ".parquet", (REJECTS_SUFFIX,), inputs)


def checked_predict_files(
    smiles: Path_, model: Path_, out: Path_, pretrained: Path_ | None = None, config: Path_ | None = None
) -> OutputSet:
    """The checked files of ``mmsa predict``: CSV output, ``<out>.rejects.csv`` and
    ``<out>.neighbours.csv``; ``model`` may be a folder of seed models."""
    readable_file(smiles)
    _model("--model", model, FINETUNED, folder_ok=True)
    if pretrained is not None:
        _model("--pretrained", pretrained, PRETRAINED)
    inputs = {SMILES_FILE: smiles, "--model": model, "--pretrained": pretrained, "--config": config}
    return output_set(out, ".csv", (REJECTS_SUFFIX, NEIGHBOURS_SUFFIX), inputs)
