"""``mmsa embed`` and ``mmsa predict`` on a CSV file of new SMILES.

Both standardize and featurize the file through the shared cache (bad rows are written to a
rejects CSV beside the output, with reasons), then apply the pretrained or finetuned model.
Problems with what the user gave (a missing file, a file without usable rows, a model file of the
wrong kind, an output path that cannot be written) raise :class:`mmsa.runtime.errors.InputError`,
which the command line prints as one line. Models are loaded and the output path checked before
any molecule is featurized, and a failed command leaves no output behind: the output and its
rejects file are written together at the end, or neither is.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pandas as pd

from mmsa.models.model_files import FINETUNED, KINDS, SEED_WEIGHTS, ModelFileError, seed_weight_files
from mmsa.models.pretrained_file import load_pretrained
from mmsa.models.property import (
    PropertyModel,
    graph_data,
    load_property_model,
    predict_outputs,
    reads_fused,
    to_property_values,
)
from mmsa.models.training_reference import merged, nearest_training
from mmsa.runtime.errors import InputError
from mmsa.runtime.io import write_csv
from mmsa.stages.embed import embed_molecules, write_embeddings
from mmsa.stages.prepare_smiles import PreparedMolecules, prepare_smiles_file

REJECTS_SUFFIX = ".rejects.csv"
NEIGHBOURS_SUFFIX = ".neighbours.csv"
T = TypeVar("T")


def _beside(out: str | os.PathLike, suffix: str) -> Path:
    """A table written beside an output file: the output's whole name with ``suffix`` added, so
    distinct outputs (``p.v1.csv``, ``p.v2.csv``) never share one."""
    out = Path(out)
    return out.with_name(out.name + suffix)


def rejects_path(out: str | os.PathLike) -> Path:
    """Where the rejected rows of an output file go: ``<out>.rejects.csv``."""
    return _beside(out, REJECTS_SUFFIX)


def neighbours_path(out: str | os.PathLike) -> Path:
    """Where ``mmsa predict`` writes each molecule's nearest training molecules: ``<out>.neighbours.csv``."""
    return _beside(out, NEIGHBOURS_SUFFIX)


def _loaded(option: str, load: Callable[[Path], T], path: str | os.PathLike) -> T:
    """``load(path)``, a :class:`ModelFileError` naming ``option`` when it is no such model."""
    try:
        return load(Path(path))
    except ModelFileError as err:
        raise ModelFileError(f"{option} {err}") from None


def _output_file(out: str | os.PathLike) -> Path:
    """``out`` if a file can be written there (checked before any molecule is featurized)."""
    if Path(out).is_dir():
        raise InputError(f"--out {out}: a folder; give the name of the file to write")
    return Path(out)


def _usable(prepared: PreparedMolecules, csv_path: str | os.PathLike, out: Path) -> None:
    """A file none of whose rows can be used is an :class:`InputError`; its rejects (the
    reasons) are written, and no empty output, so a script cannot mistake it for a result."""
    if prepared.rows.empty:
        _write(lambda path: write_csv(prepared.rejects, path), rejects_path(out))
        raise InputError(
            f"{csv_path}: none of its {len(prepared.rejects)} rows can be used; "
            f"reasons in {rejects_path(out)}"
        )


def _write(write: Callable[[Path], None], path: Path) -> None:
    """``write(path)``; a file system that refuses it (full, read-only) is an :class:`InputError`
    naming the file (the write is atomic: nothing partial is left)."""
    try:
        write(path)
    except OSError as err:
        raise InputError(f"--out {path}: cannot be written ({err.strerror or err})") from None


def _publish(write: Callable[[Path], None], out: Path, tables: dict[Path, pd.DataFrame]) -> None:
    """The output, then the tables beside it (its rejects, its neighbours); when one of those
    cannot be written, every file written so far is removed again, so a failed command leaves
    none of them behind."""
    _write(write, out)
    written = [out]
    try:
        for path, frame in tables.items():
            _write(lambda p, frame=frame: write_csv(frame, p), path)
            written.append(path)
    except BaseException:
        for path in written:
            path.unlink(missing_ok=True)
        raise


def embed_file(
    config: dict[str, Any],
    model_path: str | os.PathLike,
    csv_path: str | os.PathLike,
    smiles_column: str,
    out: str | os.PathLike,
    threads: int = 1,
) -> dict[str, int]:
    """Embeddings (Parquet: row, key, fused) of every valid row."""
    model = _loaded("--model", load_pretrained, model_path)
    out = _output_file(out)
    with tempfile.TemporaryDirectory() as work:
        prepared = prepare_smiles_file(config, csv_path, smiles_column, work, threads)
        _usable(prepared, csv_path, out)
        keys = prepared.rows["key"].tolist()
        fused = embed_molecules(model, prepared.store, keys)
    rows = prepared.rows["row"].tolist()
    _publish(
        lambda path: write_embeddings(keys, fused, path, rows=rows),
        out,
        {rejects_path(out): prepared.rejects},
    )
    return {
        "rows": len(prepared.rows) + len(prepared.rejects),
        "embedded": len(keys),
        "rejected": len(prepared.rejects),
    }


def finetuned_models(path: str | os.PathLike) -> list[tuple[PropertyModel, dict[str, Any]]]:
    """The finetuned model at ``path``, or every seed's model of a (dataset, model) folder of the
    workflow (``results/finetune/<dataset>/<model>/``, its ``seed-<n>.pt`` files in seed order),
    which must all predict the same tasks of the same dataset."""
    path = Path(path)
    if not path.is_dir():
        return [_loaded("--model", load_property_model, path)]
    files = seed_weight_files(path)
    if not files:
        raise ModelFileError(
            f"--model {path}: a folder without finetuned models ({SEED_WEIGHTS}); expected "
            f"{KINDS[FINETUNED]} or the folder of a dataset's model holding them"
        )
    models = [_loaded("--model", load_property_model, f) for f in files]
    same = ("dataset", "model", "task_type", "tasks")
    first = {k: models[0][1][k] for k in same}
    for f, (_, meta) in zip(files[1:], models[1:], strict=True):
        other = {k: meta[k] for k in same}
        if other != first:
            raise ModelFileError(f"--model {path}: {f.name} is {other}, {files[0].name} is {first}")
    return models


def predict_file(
    config: dict[str, Any],
    finetuned_path: str | os.PathLike,
    csv_path: str | os.PathLike,
    smiles_column: str,
    out: str | os.PathLike,
    pretrained_path: str | os.PathLike | None = None,
    threads: int = 1,
    neighbours: int = 0,
) -> dict[str, int]:
    """Predictions (CSV: row, input, key, one column per task) of every valid row.

    With ``neighbours`` > 0 (the command's ``--neighbours``) each molecule's ``neighbours``
    nearest training molecules go to ``<out>.neighbours.csv`` (``row`` of the molecule, ``rank``,
    ``neighbour`` key, its label for each task, ``ecfp_tanimoto`` and, for models that read the
    fused space, ``fused_cosine``; :func:`~mmsa.models.training_reference.nearest_training`), and
    the output gains each molecule's largest similarity of each kind (``max_ecfp_tanimoto``,
    ``max_fused_cosine``) and ``in_domain``: ``max_ecfp_tanimoto`` at least the model's
    applicability threshold, calibrated on its validation molecules
    (:func:`~mmsa.models.training_reference.domain_threshold`; for seed models, the median of
    theirs). A model file saved without its training molecules gets none of these.

    Given a folder of seed models (:func:`finetuned_models`), each task column holds the mean of
    the seeds' predictions (probabilities, for classification) and ``<task>_std`` their standard
    deviation over the seeds (ddof 1, as the report's): the seeds' disagreement, a first measure
    of how sure the models are about a molecule.
    """
    models = finetuned_models(finetuned_path)
    meta = models[0][1]
    fused_needed = any(reads_fused(model) for model, _ in models)
    if fused_needed and pretrained_path is None:
        raise InputError(
            f"{meta['model']} models need the pretrained model (--pretrained) to place "
            "new molecules among the training molecules"
        )
    pretrained = None
    if pretrained_path is not None:
        pretrained = _loaded("--pretrained", load_pretrained, pretrained_path)
    out = _output_file(out)
    with tempfile.TemporaryDirectory() as work:
        prepared = prepare_smiles_file(config, csv_path, smiles_column, work, threads)
        _usable(prepared, csv_path, out)
        keys = prepared.rows["key"].tolist()
        graphs = graph_data(prepared.store.get(keys))
        fused = None
        if fused_needed and pretrained is not None:
            fused = embed_molecules(pretrained, prepared.store, keys)
    values = np.stack(
        [
            to_property_values(
                predict_outputs(model, graphs, fused if reads_fused(model) else None, keys=keys),
                m["task_type"],
                m["target_mean"],
                m["target_std"],
            )
            for model, m in models
        ]
    )
    table = prepared.rows[["row", "input", "key"]].copy()
    for i, task in enumerate(meta["tasks"]):
        table[task] = values[:, :, i].mean(0)
        if len(models) > 1:
            table[f"{task}_std"] = values[:, :, i].std(0, ddof=1)
    tables = {rejects_path(out): prepared.rejects}
    references = [m["reference"] for _, m in models]
    if neighbours > 0 and all(r is not None for r in references):
        near, largest = nearest_training(merged(references), meta["tasks"], keys, fused, neighbours)
        near.insert(0, "row", table["row"].to_numpy()[near.pop("query").to_numpy()])
        if fused is None:  # no fused space to compare in: no columns for it
            near, largest = near.drop(columns="fused_cosine"), largest.drop(columns="max_fused_cosine")
        tables[neighbours_path(out)] = near
        table = pd.concat([table, largest.set_index(table.index)], axis=1)
        thresholds = [m["domain"]["max_ecfp_tanimoto"] for _, m in models if "domain" in m]
        if len(thresholds) == len(models):  # seeds disagree a little: their median threshold
            table["in_domain"] = table["max_ecfp_tanimoto"] >= float(np.median(thresholds))
    _publish(lambda path: write_csv(table, path), out, tables)
    return {
        "rows": len(table) + len(prepared.rejects),
        "predicted": len(table),
        "rejected": len(prepared.rejects),
        "models": len(models),
        "computed": prepared.computed,  # molecules featurized now; the others came from the cache
        "reused": prepared.reused,
    }
