"""``mmsa embed`` and ``mmsa predict`` on a CSV file of new SMILES.

Both standardize and featurize the file through the shared cache (bad rows are written to a
rejects CSV beside the output, with reasons), then apply the pretrained or finetuned model.
Problems with what the user gave (a missing file, a file without usable rows, a model file of the
wrong kind, an output path that cannot be written) raise :class:`mmsa.runtime.errors.InputError`,
which the command line prints as one line. The output set is checked
(:mod:`mmsa.stages.command_files`) and the models loaded and checked against each other before
any molecule is featurized, as the models' training molecules were
(:mod:`mmsa.stages.model_features`); the output and the tables beside it are published together
at the end (:meth:`OutputSet.publish <mmsa.runtime.output_set.OutputSet.publish>`).
"""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mmsa.models.model_files import load_model_file
from mmsa.models.pretrained_file import pretrained_model
from mmsa.models.property import (
    PropertyModel,
    graph_data,
    load_property_model,
    predict_outputs,
    reads_fused,
    to_property_values,
)
from mmsa.models.training_reference import merged, nearest_training
from mmsa.plan.model_paths import (
    FINETUNED,
    KINDS,
    PRETRAINED,
    SEED_WEIGHTS,
    ModelFileError,
    seed_of,
    seed_weight_files,
)
from mmsa.runtime.errors import InputError
from mmsa.runtime.hashing import sha256_file
from mmsa.runtime.io import write_csv
from mmsa.runtime.output_set import OutputSet
from mmsa.stages.command_files import (
    NEIGHBOURS_SUFFIX,
    REJECTS_SUFFIX,
    checked_embed_files,
    checked_predict_files,
    given_as,
)
from mmsa.stages.embed import embed_molecules, write_embeddings
from mmsa.stages.model_features import featurized_as
from mmsa.stages.prepare_smiles import PreparedMolecules, prepare_smiles_file

log = logging.getLogger(__name__)


def _usable(prepared: PreparedMolecules, csv_path: str | os.PathLike, outputs: OutputSet) -> None:
    """A file none of whose rows can be used is an :class:`InputError`; its rejects (the
    reasons) are written, and no output (an earlier one is removed with the rest of its set), so
    a script cannot mistake an old or empty one for a result."""
    if prepared.rows.empty:
        rejects = outputs.side(REJECTS_SUFFIX)
        outputs.publish({rejects: lambda path: write_csv(prepared.rejects, path)})
        raise InputError(
            f"{csv_path}: none of its {len(prepared.rejects)} rows can be used; reasons in {rejects}"
        )


def embed_file(
    config: dict[str, Any],
    model_path: str | os.PathLike,
    csv_path: str | os.PathLike,
    smiles_column: str,
    out: str | os.PathLike,
    threads: int = 1,
) -> dict[str, int]:
    """Embeddings (Parquet: row, key, fused) of every valid row, featurized as the model's
    training molecules were (:func:`~mmsa.stages.model_features.featurized_as`)."""
    outputs = checked_embed_files(csv_path, model_path, out)
    weights = given_as("--model", lambda p: load_model_file(p, PRETRAINED), model_path)
    model = pretrained_model(weights)
    config = featurized_as(config, weights.get("features"), f"--model {model_path}")
    with tempfile.TemporaryDirectory() as work:
        prepared = prepare_smiles_file(config, csv_path, smiles_column, work, threads)
        _usable(prepared, csv_path, outputs)
        distinct, at = prepared.distinct_keys()
        fused = embed_molecules(model, prepared.store, distinct)[at]  # each molecule once
    keys = prepared.rows["key"].tolist()
    rows = prepared.rows["row"].tolist()
    outputs.publish(
        {
            outputs.out: lambda path: write_embeddings(keys, fused, path, rows=rows),
            outputs.side(REJECTS_SUFFIX): lambda path: write_csv(prepared.rejects, path),
        }
    )
    return {
        "rows": len(prepared.rows) + len(prepared.rejects),
        "embedded": len(keys),
        "rejected": len(prepared.rejects),
    }


def finetuned_models(path: str | os.PathLike) -> list[tuple[PropertyModel, dict[str, Any]]]:
    """The finetuned model at ``path``, or every seed's model of a (dataset, model) folder of the
    workflow (``results/finetune/<dataset>/<model>/``, its ``seed-<n>.pt`` files in seed order),
    which must all predict the same tasks of the same dataset, come from one finetuning run
    (the ``run`` they record) and be distinct seeds: the seed their file names must be the one
    recorded in it, and no two files may be copies of one model, whose zero spread would read as
    perfect agreement."""
    path = Path(path)
    if not path.is_dir():
        return [given_as("--model", load_property_model, path)]
    files = seed_weight_files(path)
    if not files:
        raise ModelFileError(
            f"--model {path}: a folder without finetuned models ({SEED_WEIGHTS}); expected "
            f"{KINDS[FINETUNED]} or the folder of a dataset's model holding them"
        )
    models = [given_as("--model", load_property_model, f) for f in files]
    same = ("dataset", "model", "task_type", "tasks", "run")
    first = {k: models[0][1].get(k) for k in same}
    for f, (_, meta) in zip(files[1:], models[1:], strict=True):
        other = {k: meta.get(k) for k in same}
        if other != first:
            differ = ", ".join(f"{k} {other[k]!r} vs {first[k]!r}" for k in same if other[k] != first[k])
            raise ModelFileError(
                f"--model {path}: {f.name} and {files[0].name} come from different finetuning runs ({differ})"
            )
    for f, (_, meta) in zip(files, models, strict=True):
        if meta.get("seed", seed_of(f)) != seed_of(f):
            raise ModelFileError(f"--model {path}: {f.name} holds the model of seed {meta['seed']}")
    digests: dict[str, str] = {}
    for f in files:
        twin = digests.setdefault(sha256_file(f), f.name)
        if twin != f.name:
            raise ModelFileError(f"--model {path}: {f.name} is a copy of {twin} (same bytes), not a seed")
    return models


def _pretrained_for(
    models: list[tuple[PropertyModel, dict[str, Any]]], path: str | os.PathLike | None
) -> dict[str, Any] | None:
    """The contents of the ``--pretrained`` file, which must be the file the finetuned models were
    trained from (the SHA-256 they record): another pretraining's fused space would place new
    molecules among the training molecules by a geometry the models never saw. ``None`` when not
    given or not used (models finetuned without one); an error when models that read the fused
    space need it."""
    meta = models[0][1]
    if path is None:
        if any(reads_fused(model) for model, _ in models):
            raise InputError(
                f"{meta['model']} models need the pretrained model (--pretrained) to place "
                "new molecules among the training molecules"
            )
        return None
    weights = given_as("--pretrained", lambda p: load_model_file(p, PRETRAINED), path)
    wanted = meta.get("pretrained_sha256")
    if wanted is None and "run" in meta:
        log.warning("--pretrained %s: not used (%s models are finetuned without one)", path, meta["model"])
        return None
    if wanted is None:  # saved by an mmsa from before models recorded it
        log.warning("--model records no pretrained model to check --pretrained %s against", path)
    elif (digest := sha256_file(path)) != wanted:
        raise InputError(
            f"--pretrained {path}: SHA-256 {digest[:12]}..., not the pretrained model the finetuned "
            f"models were trained from ({wanted[:12]}...); give that model.pt"
        )
    return weights


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
    outputs = checked_predict_files(csv_path, finetuned_path, out, pretrained_path)
    models = finetuned_models(finetuned_path)
    meta = models[0][1]
    fused_needed = any(reads_fused(model) for model, _ in models)
    weights = _pretrained_for(models, pretrained_path)
    pretrained = None if weights is None else pretrained_model(weights)
    record = meta.get("features", None if weights is None else weights.get("features"))
    config = featurized_as(config, record, f"--model {finetuned_path}")
    with tempfile.TemporaryDirectory() as work:
        prepared = prepare_smiles_file(config, csv_path, smiles_column, work, threads)
        _usable(prepared, csv_path, outputs)
        keys, at = prepared.distinct_keys()  # each molecule once; ``at``: each row's molecule
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
    )[:, at]
    table = prepared.rows[["row", "input", "key"]].copy()
    for i, task in enumerate(meta["tasks"]):
        table[task] = values[:, :, i].mean(0)
        if len(models) > 1:
            table[f"{task}_std"] = values[:, :, i].std(0, ddof=1)
    tables = {outputs.side(REJECTS_SUFFIX): prepared.rejects}
    references = [m["reference"] for _, m in models]
    if neighbours > 0 and all(r is not None for r in references):
        near, largest = nearest_training(merged(references), meta["tasks"], keys, fused, neighbours)
        near = pd.DataFrame({"row": table["row"].to_numpy(), "query": at}).merge(near, on="query")
        near = near.drop(columns="query")  # every row gets its molecule's neighbours
        largest = largest.iloc[at]
        if fused is None:  # no fused space to compare in: no columns for it
            near, largest = near.drop(columns="fused_cosine"), largest.drop(columns="max_fused_cosine")
        tables[outputs.side(NEIGHBOURS_SUFFIX)] = near
        table = pd.concat([table, largest.set_index(table.index)], axis=1)
        thresholds = [m["domain"]["max_ecfp_tanimoto"] for _, m in models if "domain" in m]
        if len(thresholds) == len(models):  # seeds disagree a little: their median threshold
            table["in_domain"] = table["max_ecfp_tanimoto"] >= float(np.median(thresholds))
    writers = {path: (lambda p, frame=frame: write_csv(frame, p)) for path, frame in tables.items()}
    outputs.publish({outputs.out: lambda path: write_csv(table, path), **writers})
    return {
        "rows": len(table) + len(prepared.rejects),
        "predicted": len(table),
        "rejected": len(prepared.rejects),
        "models": len(models),
        "computed": prepared.computed,  # molecules featurized now; the others came from the cache
        "reused": prepared.reused,
    }
