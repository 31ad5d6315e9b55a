"""``mmsa embed`` and ``mmsa predict`` on a CSV file of new SMILES.

Both standardize and featurize the file through the shared cache (bad rows are written to a
rejects CSV beside the output, with reasons), then apply the pretrained or finetuned model.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import pandas as pd

from mmsa.adhoc import prepare_smiles_file
from mmsa.embed import embed_molecules, write_embeddings
from mmsa.io import atomic_path
from mmsa.models.mmsa import load_pretrained
from mmsa.models.property import graph_data, load_property_model, predict_outputs, to_property_values

REJECTS_SUFFIX = ".rejects.csv"


def rejects_path(out: str | os.PathLike) -> Path:
    """Where the rejected rows of an output file go: ``<out>.rejects.csv``, the output's whole
    name with a suffix added, so distinct outputs (``p.v1.csv``, ``p.v2.csv``) never share one."""
    out = Path(out)
    return out.with_name(out.name + REJECTS_SUFFIX)


def _write_csv(frame: pd.DataFrame, path: str | os.PathLike) -> None:
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, index=False)


def embed_file(
    config: dict[str, Any],
    model_path: str | os.PathLike,
    csv_path: str | os.PathLike,
    smiles_column: str,
    out: str | os.PathLike,
    threads: int = 1,
) -> dict[str, int]:
    """Embeddings (Parquet: key, fused, graph, plus the source row) of every valid row."""
    with tempfile.TemporaryDirectory() as work:
        prepared = prepare_smiles_file(config, csv_path, smiles_column, work, threads)
        keys = prepared.rows["key"].tolist()
        fused, graph = embed_molecules(load_pretrained(model_path), prepared.store, keys)
    write_embeddings(keys, fused, graph, out)
    _write_csv(prepared.rejects, rejects_path(out))
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
    model, meta = load_property_model(finetuned_path)
    if model.structure is not None and pretrained_path is None:
        raise ValueError(
            f"{meta['model']} models need the pretrained model (--pretrained) to place "
            "new molecules in the training molecules' hypergraph"
        )
    with tempfile.TemporaryDirectory() as work:
        prepared = prepare_smiles_file(config, csv_path, smiles_column, work, threads)
        keys = prepared.rows["key"].tolist()
        graphs = graph_data(prepared.store.get(keys))
        fused = None
        if model.structure is not None and keys:
            fused, _ = embed_molecules(load_pretrained(pretrained_path), prepared.store, keys)
    outputs = predict_outputs(model, graphs, fused)
    values = to_property_values(outputs, meta["task_type"], meta["target_mean"], meta["target_std"])
    table = prepared.rows[["row", "input", "key"]].copy()
    for i, task in enumerate(meta["tasks"]):
        table[task] = values[:, i]
    _write_csv(table, out)
    _write_csv(prepared.rejects, rejects_path(out))
    return {
        "rows": len(table) + len(prepared.rejects),
        "predicted": len(table),
        "rejected": len(prepared.rejects),
    }
