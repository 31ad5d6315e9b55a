"""Every pipeline stage as a plain function of (validated config, paths), called by both the
Snakemake rules and the ``mmsa`` command line.

The model stages import torch and the model code inside the function, so that the data stages
do not pay for loading them.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from mmsa.data.corpus import corpus_counts, fetch_corpus
from mmsa.data.fetch import SOURCE_DATASET, fetch_dataset
from mmsa.data.registry import MIXTURE
from mmsa.data.shard import duplicate_counts, holdout_counts, run_shard, shard_path
from mmsa.data.standardize import reject_frame
from mmsa.data.standardize_stage import run_standardize
from mmsa.features.featurize import run_featurize
from mmsa.plan.config_slices import placement
from mmsa.plan.datasets import dataset_spec, duplicate_policy, n_shards, row_sample
from mmsa.runtime.io import atomic_path, write_csv, write_parquet, write_text
from mmsa.stage_settings import feature_settings, standardize_options

log = logging.getLogger(__name__)


class AccountingError(RuntimeError):
    """Rows went missing between the input table and the outputs: a bug, never ignored."""


def fetch(config: dict[str, Any], dataset: str, out: str | os.PathLike) -> int:
    """Fetch ``dataset`` into ``out`` (raw Parquet); return its rows."""
    spec = dataset_spec(config, dataset)
    if spec.source == MIXTURE:
        sources = {name: dataset_spec(config, name) for name in spec.mixture}
        taken = fetch_corpus(
            spec, sources, out, config["cache_dir"], config["data"]["local_dir"], config["seed"]
        )
        return sum(c["taken"] for c in taken.values())
    return fetch_dataset(
        spec,
        out,
        config["cache_dir"],
        config["data"]["local_dir"],
        max_rows=config["data"]["max_rows"].get(dataset),
        **row_sample(config, dataset),
    )


def standardize(
    config: dict[str, Any],
    dataset: str,
    raw: str | os.PathLike,
    out_dir: str | os.PathLike,
    rejects: str | os.PathLike,
    threads: int = 1,
    scheduler_address: str | None = None,
) -> dict:
    """Standardize the raw rows of ``dataset`` (on the Dask cluster at ``scheduler_address`` if
    given, see :data:`mmsa.plan.config_slices.PLACEMENT`)."""
    spec = dataset_spec(config, dataset)
    return run_standardize(
        raw,
        out_dir,
        rejects,
        spec,
        standardize_options(config),
        workers=threads,
        scheduler_address=scheduler_address,
    )


def shard(
    config: dict[str, Any],
    dataset: str,
    standardized: str | os.PathLike,
    out_dir: str | os.PathLike,
    rejects: str | os.PathLike,
    threads: int = 1,
    scheduler_address: str | None = None,
    holdouts: dict[str, str | os.PathLike] | None = None,
) -> dict:
    """Shard the standardized rows of ``dataset`` (on the Dask cluster at ``scheduler_address``
    if given), without the molecules of the standardized datasets in ``holdouts`` (name ->
    folder; see :func:`mmsa.plan.datasets.holdout_datasets`)."""
    with atomic_path(out_dir) as tmp:
        return run_shard(
            standardized,
            tmp,
            rejects,
            n_shards(config, dataset),
            duplicate_policy(config),
            workers=threads,
            scheduler_address=scheduler_address,
            holdouts=holdouts,
        )


def featurize(
    config: dict[str, Any],
    shard_file: str | os.PathLike,
    manifest: str | os.PathLike,
    rejects: str | os.PathLike,
    threads: int = 1,
    scheduler_address: str | None = None,
) -> dict:
    """Featurize one shard into the shared cache (on the Dask cluster at ``scheduler_address``
    if given; ``threads`` then does not matter)."""
    return run_featurize(
        shard_file,
        manifest,
        rejects,
        config["cache_dir"],
        feature_settings(config),
        workers=threads,
        chunk_size=config["featurize"]["chunk_size"],
        scheduler_address=scheduler_address,
    )


def account(
    dataset: str,
    raw: str | os.PathLike,
    rejects: Sequence[str | os.PathLike],
    manifests: Sequence[str | os.PathLike],
    summary: str | os.PathLike,
    rejects_csv: str | os.PathLike,
) -> dict[str, Any]:
    """Check rows in = rows featurized + rows rejected; write the summary and all rejects.

    Every input row number must appear exactly once across the manifests and rejects tables.
    The summary also counts duplicate groups and the rows they cost (see
    :func:`mmsa.data.shard.duplicate_counts`), the rows removed as finetuning molecules, and for
    a mixture each source's rows asked for, taken and featurized.
    """
    rows_in = pq.read_metadata(raw).num_rows
    tables = [pq.read_table(p).to_pandas() for p in rejects]
    all_rejects = pd.concat([reject_frame([]), *tables], ignore_index=True).sort_values("row")
    featurized = pd.concat(
        [pq.read_table(p, columns=["row", "conf_ok", "image_ok"]).to_pandas() for p in manifests],
        ignore_index=True,
    )
    seen = pd.concat([featurized["row"], all_rejects["row"]])
    if len(seen) != rows_in or seen.nunique() != rows_in:
        lost = sorted(set(range(rows_in)) - set(seen))[:10]
        raise AccountingError(
            f"{dataset}: {rows_in} rows in, {len(featurized)} featurized + {len(all_rejects)} rejected "
            f"({seen.nunique()} distinct); first missing rows {lost}"
        )
    result = {
        "dataset": dataset,
        "rows_in": rows_in,
        "featurized": len(featurized),
        "rejected": len(all_rejects),
        "rejected_by_stage": {k: int(v) for k, v in all_rejects["stage"].value_counts().items()},
        **duplicate_counts(all_rejects),
        **holdout_counts(all_rejects),
        "conformer_missing": int((~featurized["conf_ok"]).sum()),
        "image_missing": int((~featurized["image_ok"]).sum()),
    }
    sources = corpus_counts(raw)
    if sources is not None:  # a mixture: what each source gave and how much of it is left
        origin = pq.read_table(raw, columns=[SOURCE_DATASET])[SOURCE_DATASET].to_pandas()
        left = origin.iloc[featurized["row"].to_numpy()].value_counts()
        result["sources"] = {name: {**c, "featurized": int(left.get(name, 0))} for name, c in sources.items()}
    write_csv(all_rejects, rejects_csv)
    write_text(json.dumps(result, indent=1) + "\n", summary)
    log.info(
        "%s: %d rows in = %d featurized + %d rejected %s",
        dataset,
        rows_in,
        len(featurized),
        len(all_rejects),
        result["rejected_by_stage"],
    )
    return result


def run_data_stages(
    config: dict[str, Any], dataset: str, folder: str | os.PathLike, threads: int = 1
) -> dict:
    """fetch -> standardize -> shard -> featurize -> account into ``folder``, in this process.

    What the Snakemake rules do for one dataset, for benchmarks and tests that need featurized
    data without a workflow run. Layout: ``shards/``, ``man-<shard>.parquet`` (featurize
    manifests), ``rej-*.parquet``, ``accounting.json``, ``rejects.csv``. Returns the accounting
    summary with the featurize counts under ``featurize``. The data stages run on the Dask
    cluster of ``config``'s ``dask.scheduler_address`` when it is set.
    """
    d = Path(folder)
    fetch(config, dataset, d / "raw.parquet")
    standardize(
        config,
        dataset,
        d / "raw.parquet",
        d / "std",
        d / "rej-std.parquet",
        threads=threads,
        **placement(config, "standardize"),
    )
    shard(
        config,
        dataset,
        d / "std",
        d / "shards",
        d / "rej-shard.parquet",
        threads=threads,
        **placement(config, "shard"),
    )
    shards = range(n_shards(config, dataset))
    where = placement(config, "featurize")
    counts = [
        featurize(
            config,
            shard_path(d / "shards", s),
            d / f"man-{s}.parquet",
            d / f"rej-feat-{s}.parquet",
            threads,
            **where,
        )
        for s in shards
    ]
    summary = account(
        dataset,
        d / "raw.parquet",
        [d / "rej-std.parquet", d / "rej-shard.parquet", *[d / f"rej-feat-{s}.parquet" for s in shards]],
        [d / f"man-{s}.parquet" for s in shards],
        d / "accounting.json",
        d / "rejects.csv",
    )
    return {**summary, "featurize": counts}


def pretrain(
    config: dict[str, Any],
    manifests: Sequence[str | os.PathLike],
    out_dir: str | os.PathLike,
    checkpoint: str | os.PathLike,
) -> dict[str, Any]:
    """Pretrain MMSA on the featurized corpus listed by ``manifests``; under ``torchrun``, as one
    rank of the group its environment describes."""
    import dataclasses

    from mmsa.features.cache import FeatureCache
    from mmsa.runtime.distributed import process_group
    from mmsa.train.pretrain import PretrainSettings, train_mmsa

    settings = PretrainSettings.from_dict(config["pretrain"]["settings"])
    cache = FeatureCache(config["cache_dir"], feature_settings(config))
    with process_group(settings.device) as ranks:
        result = train_mmsa(
            [str(m) for m in manifests], cache, settings, config["seed"], out_dir, checkpoint, ranks=ranks
        )
    return dataclasses.asdict(result)


def feature_store(config: dict[str, Any], manifests: Sequence[str | os.PathLike]):
    from mmsa.features.cache import FeatureCache
    from mmsa.features.loader import FeatureStore, read_manifests

    cache = FeatureCache(config["cache_dir"], feature_settings(config))
    return FeatureStore(cache, read_manifests(manifests))


def embed(
    config: dict[str, Any],
    model_path: str | os.PathLike,
    manifests: Sequence[str | os.PathLike],
    out: str | os.PathLike,
) -> int:
    """Fused embeddings of every featurized molecule of a dataset."""
    from mmsa.embed import embed_molecules, write_embeddings
    from mmsa.models.mmsa import load_pretrained
    from mmsa.runtime.device import pick_device

    device = pick_device(config["pretrain"]["settings"]["device"])
    store = feature_store(config, manifests)
    keys = sorted(store.keys)
    fused = embed_molecules(load_pretrained(model_path, device), store, keys, device=device)
    write_embeddings(keys, fused, out)
    return len(keys)


def split(
    config: dict[str, Any],
    dataset: str,
    shards_dir: str | os.PathLike,
    manifests: Sequence[str | os.PathLike],
    out: str | os.PathLike,
    stats_out: str | os.PathLike,
) -> dict[str, Any]:
    """Every seed's train/valid/test split of a dataset's featurized molecules, read by every
    model; the statistics count molecules and labels per part."""
    from mmsa.data.labelled import load_labelled
    from mmsa.eval.split import split_summary, split_table

    frame = load_labelled(_shard_files(shards_dir), manifests)
    settings = config["finetune"]["settings"]
    table = split_table(
        frame["row"].tolist(),
        frame["key"].tolist(),
        settings["split"],
        settings["split_fractions"],
        config["finetune"]["seeds"],
    )
    stats = split_summary(table, frame, dataset_spec(config, dataset).task_type)
    write_parquet(pa.Table.from_pandas(table, preserve_index=False), out)
    write_text(json.dumps(stats, indent=1) + "\n", stats_out)
    log.info("%s split: %s", dataset, json.dumps(stats))
    return stats


def hypergraph(
    config: dict[str, Any],
    embeddings: str | os.PathLike,
    splits: str | os.PathLike,
    out: str | os.PathLike,
    stats_out: str | os.PathLike,
) -> dict[str, Any]:
    """Each split's kNN hypergraph over the training molecules' fused embeddings."""
    from mmsa.embed import read_embeddings
    from mmsa.hypergraph import train_hypergraphs, write_hypergraphs

    keys, fused = read_embeddings(embeddings)
    table, stats = train_hypergraphs(keys, fused, pd.read_parquet(splits), config["finetune"]["hypergraph_k"])
    write_hypergraphs(table, stats, out, stats_out)
    return stats


def _shard_files(shards_dir: str | os.PathLike) -> list[str]:
    return sorted(str(p) for p in Path(shards_dir).glob("shard-*.parquet"))


def finetune(
    config: dict[str, Any],
    dataset: str,
    model_name: str,
    shards_dir: str | os.PathLike,
    manifests: Sequence[str | os.PathLike],
    splits: str | os.PathLike,
    results: Sequence[str | os.PathLike],
    predictions: Sequence[str | os.PathLike],
    weights: Sequence[str | os.PathLike] = (),
    model_path: str | os.PathLike | None = None,
    embeddings: str | os.PathLike | None = None,
    hypergraph_path: str | os.PathLike | None = None,
) -> list[dict[str, Any]]:
    """Finetune one model on one dataset for every configured seed (``finetune.seeds``, in
    order; ``results[i]``, ``predictions[i]`` and ``weights[i]`` belong to seed i): the metrics
    as JSON, the held-out predictions as Parquet and, for neural models, the best-epoch weights
    (for ``mmsa predict``)."""
    import numpy as np

    from mmsa.data.labelled import load_labelled
    from mmsa.embed import read_embeddings
    from mmsa.models.mmsa import load_pretrained
    from mmsa.models.property import save_property_model
    from mmsa.plan.compared_models import compared_model
    from mmsa.runtime.device import pick_device
    from mmsa.runtime.hashing import sha256_file
    from mmsa.runtime.provenance import provenance
    from mmsa.train.finetune import DatasetInputs, FinetuneSettings, run_seed

    spec = compared_model(model_name)
    seeds = config["finetune"]["seeds"]
    if (
        len(results) != len(seeds)
        or len(predictions) != len(seeds)
        or (spec.neural and len(weights) != len(seeds))
    ):
        raise ValueError(
            f"finetune {dataset}/{model_name}: one output of each kind per seed {seeds} is needed"
        )
    # a linear probe reads no finetune.settings, so its rule declares none
    settings = FinetuneSettings.from_dict(config["finetune"].get("settings", {}))
    frame = load_labelled(_shard_files(shards_dir), manifests)
    data = DatasetInputs(dataset, dataset_spec(config, dataset).task_type, frame, pd.read_parquet(splits))
    if spec.neural:
        data.store = feature_store(config, manifests)
    if spec.pretrained or spec.hypergraph:
        data.pretrained = load_pretrained(model_path)
        data.arch = data.pretrained.config.to_dict()
    elif spec.neural:  # only a model without pretraining is handed (and reads) pretrain.settings
        data.arch = gin_architecture(config)
    if spec.embeddings:
        keys, fused = read_embeddings(embeddings)
        position = {k: i for i, k in enumerate(keys)}
        data.fused = fused[np.array([position[k] for k in frame["key"]])]
    if spec.hypergraph:
        data.hypergraph = pd.read_parquet(hypergraph_path)
    if spec.hypergraph or spec.neighbour_labels:
        data.neighbours = config["finetune"]["hypergraph_k"]
    record = provenance(str(pick_device(settings.device)) if spec.neural else "cpu")
    if model_path is not None:  # names the pretrained model behind the result
        record["pretrained_sha256"] = sha256_file(model_path)
    out = []
    for i, seed in enumerate(seeds):
        run = run_seed(model_name, data, settings, seed)
        result = {**run.result, "provenance": record}
        if run.model is not None:
            meta = {
                key: result[key] for key in ("model", "dataset", "task_type", "target_mean", "target_std")
            }
            meta.update(arch=data.arch, dropout=settings.dropout, tasks=data.tasks)
            save_property_model(run.model, meta, weights[i])
        write_parquet(pa.Table.from_pandas(run.predictions, preserve_index=False), predictions[i])
        write_text(json.dumps(result, indent=1) + "\n", results[i])
        out.append(result)
    return out


def gin_architecture(config: dict[str, Any]) -> dict[str, Any]:
    """The GIN architecture of the configured MMSA model (for models without pretraining)."""
    from mmsa.models.mmsa import MMSAConfig

    model = MMSAConfig.from_dict(
        {"feature_set": config["featurize"]["graph_features"], **config["pretrain"]["settings"]["model"]}
    )
    return model.to_dict()


def report(
    results: Sequence[str | os.PathLike],
    csv_path: str | os.PathLike,
    md_path: str | os.PathLike,
    bars: str | os.PathLike,
    curves: str | os.PathLike,
    config: dict[str, Any] | None = None,
    split_stats: Sequence[str | os.PathLike] = (),
    *,
    comparisons_path: str | os.PathLike,
    coverage: Sequence[str | os.PathLike] = (),
) -> str:
    """The results report (tables, paired comparisons, split sizes, corpus coverage, settings,
    provenance) and plots over every finetuning job."""
    from mmsa.report import write_report

    write_report(
        results,
        csv_path,
        md_path,
        bars,
        curves,
        config,
        split_stats,
        comparisons_path=comparisons_path,
        coverage=coverage,
    )
    text = Path(md_path).read_text()
    log.info("results:\n%s", text)
    return text
