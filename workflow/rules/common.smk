# Validation of the config against the schema (defaults filled in) and the helpers that
# turn it into job lists. All logic lives in the mmsa package; this file only wires it in.
# This process imports mmsa from the checkout (Snakemake puts the Snakefile's folder on
# sys.path) and only its RDKit- and torch-free config modules (tests/workflow/test_workflow_imports.py).
# Jobs import the installed mmsa: the venv's (`pip install -e .`), or with conda the envs'
# editable install of the checkout that MMSA_REPO names (envs/mmsa.yaml).
import os

os.environ.setdefault("MMSA_REPO", workflow.basedir)

from mmsa.plan.compared_models import MODELS
from mmsa.plan.config import ConfigError, validate_config
from mmsa.plan.datasets import (
    all_datasets,
    classification_datasets,
    fetched_from,
    holdout_datasets,
    n_shards,
)
from mmsa.plan.config_slices import stage_config
from mmsa.plan.job_resources import job_resources
from mmsa.runtime.kernels import CpuKernelsError, pin_cpu_kernels

try:
    # the --configfile files (config/default.yaml when none is given) with --config merged on top
    _validated = validate_config(config)
except ConfigError as err:
    raise WorkflowError(str(err)) from None
config.clear()
config.update(_validated)
# Every job (a child of this process, or of a cluster job's own Snakemake) and torchrun rank
# inherits the pinned kernel variables; they must be set before a job imports torch. A pin the
# CPU cannot run stops the run here, with one line, before any job starts (on a cluster, each
# job's own Snakemake checks its node's CPU).
try:
    pin_cpu_kernels(config["cpu_kernels"])
except CpuKernelsError as err:
    raise WorkflowError(str(err)) from None

DATASETS = all_datasets(config)
SEEDS = config["finetune"]["seeds"]
CLASSIFICATION = classification_datasets(config)
NEURAL = [m.name for m in MODELS.values() if m.neural]
CLASSICAL = [m.name for m in MODELS.values() if not m.neural]
# the corpus-coverage table, in the report and the all target, when the corpus is built here
COVERAGE = [] if config["pretrain"]["weights"] else ["results/report/coverage.md"]


wildcard_constraints:
    dataset=r"[A-Za-z0-9_]+",
    shard=r"\d{5}",
    model="|".join(MODELS),


def shard_ids_of(dataset):
    """The shard ids of a dataset, known from the config: the shard rule writes every one."""
    return [f"{s:05d}" for s in range(n_shards(config, dataset))]


def manifests_of(dataset):
    """Every featurize manifest of a dataset, one per shard."""
    return expand(
        "results/features/{dataset}/shard-{shard}.parquet",
        dataset=dataset,
        shard=shard_ids_of(dataset),
    )


def feature_rejects_of(dataset):
    """Every featurize rejects table of a dataset, one per shard."""
    return expand(
        "results/features/{dataset}/rejects-{shard}.parquet",
        dataset=dataset,
        shard=shard_ids_of(dataset),
    )


def finetune_inputs(wc):
    """What a finetuning job reads: labels, features and the split, plus what its model needs."""
    model = MODELS[wc.model]
    inputs = {
        "shards": f"results/datasets/{wc.dataset}/shards",
        "manifests": manifests_of(wc.dataset),
        "splits": f"results/splits/{wc.dataset}.parquet",
    }
    if model.reads_pretrained:  # embeddings too: its hash goes into the provenance
        inputs["model"] = "results/pretrain/model.pt"
    for output in ("embeddings", "hypergraph"):
        if output in model.reads:
            inputs[output] = f"results/{output}/{wc.dataset}.parquet"
    return inputs


def held_out_predictions(wc):
    """Every (model, seed) held-out predictions file of a dataset."""
    return expand(
        "results/finetune/{dataset}/{model}/seed-{seed}.predictions.parquet",
        dataset=wc.dataset,
        model=config["finetune"]["models"],
        seed=SEEDS,
    )


def per_seed(pattern):
    """One output path per configured seed (``{seed}`` filled in, other wildcards kept)."""
    return [pattern.replace("{seed}", str(seed)) for seed in SEEDS]
