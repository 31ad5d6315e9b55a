"""``mmsa embed`` and ``mmsa predict`` on a CSV file of new SMILES.

Both standardize and featurize the file through the shared cache (bad rows are written to a
rejects CSV beside the output, with reasons), then apply the pretrained or finetuned model.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch_geometric.data import Batch

from mmsa.adhoc import prepare_smiles_file
from mmsa.embed import embed_molecules, load_pretrained, write_embeddings
from mmsa.io import atomic_path
from mmsa.train.finetune import graph_data, load_finetuned


def rejects_path(out: str | os.PathLike) -> Path:
    """Where the rejected rows of an output file go: ``<out stem>.rejects.csv``."""
    out = Path(out)
    return out.with_name(out.name.split(".")[0] + ".rejects.csv")


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
    model, meta = load_finetuned(finetuned_path)
    if model.structure is not None and pretrained_path is None:
        raise ValueError(
            f"{meta['model']} models need the pretrained model (--pretrained) to place "
            "new molecules in the dataset's hypergraph"
        )
    with tempfile.TemporaryDirectory() as work:
        prepared = prepare_smiles_file(config, csv_path, smiles_column, work, threads)
        keys = prepared.rows["key"].tolist()
        data = graph_data(prepared.store, keys, np.zeros((len(keys), len(meta["tasks"]))))
        context = None
        if model.structure is not None:
            fused, _ = embed_molecules(load_pretrained(pretrained_path), prepared.store, keys)
            with torch.no_grad():
                context = model.structure.for_new(torch.as_tensor(fused), meta["hypergraph_k"])
    raw = np.zeros((0, len(meta["tasks"])))
    if data:
        with torch.no_grad():
            raw = model(Batch.from_data_list(data), context).numpy()
    values = raw * np.asarray(meta["target_std"]) + np.asarray(meta["target_mean"])
    if meta["task_type"] == "classification":
        values = 1.0 / (1.0 + np.exp(-values))
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
