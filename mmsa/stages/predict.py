"""``mmsa embed`` and ``mmsa predict`` on a CSV file of new SMILES.

Both standardize and featurize the file through the shared cache (bad rows are written to a
rejects CSV beside the output, with reasons), then apply the pretrained or finetuned model.
Problems with what the user gave (a missing file, a file without usable rows) raise
:class:`mmsa.runtime.errors.InputError`, which the command line prints as one line.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

from mmsa.models.pretrained_file import load_pretrained
from mmsa.models.property import (
    graph_data,
    load_property_model,
    predict_outputs,
    reads_fused,
    to_property_values,
)
from mmsa.runtime.errors import InputError
from mmsa.runtime.io import write_csv
from mmsa.stages.embed import embed_molecules, write_embeddings
from mmsa.stages.prepare_smiles import PreparedMolecules, prepare_smiles_file

REJECTS_SUFFIX = ".rejects.csv"


def rejects_path(out: str | os.PathLike) -> Path:
    """Where the rejected rows of an output file go: ``<out>.rejects.csv``, the output's whole
    name with a suffix added, so distinct outputs (``p.v1.csv``, ``p.v2.csv``) never share one."""
    out = Path(out)
    return out.with_name(out.name + REJECTS_SUFFIX)


def _model_file(path: str | os.PathLike, option: str) -> Path:
    """``path`` if it is a file; otherwise an :class:`InputError` naming the option."""
    if not Path(path).is_file():
        raise InputError(f"{option} {path}: no such file")
    return Path(path)


def _usable(prepared: PreparedMolecules, csv_path: str | os.PathLike, out: str | os.PathLike) -> None:
    """Write the rejects; a file none of whose rows can be used is an :class:`InputError`
    (no empty output is written, so a script cannot mistake it for a result)."""
    write_csv(prepared.rejects, rejects_path(out))
    if prepared.rows.empty:
        raise InputError(
            f"{csv_path}: none of its {len(prepared.rejects)} rows can be used; "
            f"reasons in {rejects_path(out)}"
        )


def embed_file(
    config: dict[str, Any],
    model_path: str | os.PathLike,
    csv_path: str | os.PathLike,
    smiles_column: str,
    out: str | os.PathLike,
    threads: int = 1,
) -> dict[str, int]:
    """Embeddings (Parquet: row, key, fused) of every valid row."""
    model_path = _model_file(model_path, "--model")
    with tempfile.TemporaryDirectory() as work:
        prepared = prepare_smiles_file(config, csv_path, smiles_column, work, threads)
        _usable(prepared, csv_path, out)
        keys = prepared.rows["key"].tolist()
        fused = embed_molecules(load_pretrained(model_path), prepared.store, keys)
    write_embeddings(keys, fused, out, rows=prepared.rows["row"].tolist())
    return {
        "rows": len(prepared.rows) + len(prepared.rejects),
        "embedded": len(keys),
        "rejected": len(prepared.rejects),
    }


def predict_file(
    config: dict[str, Any],
    finetuned_path: str | os.PathLike,
    csv_path: str | os.PathLike,
    smiles_column: str,
    out: str | os.PathLike,
    pretrained_path: str | os.PathLike | None = None,
    threads: int = 1,
) -> dict[str, int]:
    """Predictions (CSV: row, input, key, one column per task) of every valid row."""
    model, meta = load_property_model(_model_file(finetuned_path, "--model"))
    if reads_fused(model) and pretrained_path is None:
        raise InputError(
            f"{meta['model']} models need the pretrained model (--pretrained) to place "
            "new molecules among the training molecules"
        )
    if pretrained_path is not None:
        pretrained_path = _model_file(pretrained_path, "--pretrained")
    with tempfile.TemporaryDirectory() as work:
        prepared = prepare_smiles_file(config, csv_path, smiles_column, work, threads)
        _usable(prepared, csv_path, out)
        keys = prepared.rows["key"].tolist()
        graphs = graph_data(prepared.store.get(keys))
        fused = None
        if reads_fused(model) and keys:
            fused = embed_molecules(load_pretrained(pretrained_path), prepared.store, keys)
    outputs = predict_outputs(model, graphs, fused, keys=keys)
    values = to_property_values(outputs, meta["task_type"], meta["target_mean"], meta["target_std"])
    table = prepared.rows[["row", "input", "key"]].copy()
    for i, task in enumerate(meta["tasks"]):
        table[task] = values[:, i]
    write_csv(table, out)
    return {
        "rows": len(table) + len(prepared.rejects),
        "predicted": len(table),
        "rejected": len(prepared.rejects),
    }
