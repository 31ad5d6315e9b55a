"""Snakemake adapter of the finetune and classical rules (all logic in mmsa.stages.finetune)."""

from mmsa.runtime.logs import stage_logging
from mmsa.runtime.reproducible import configure_torch
from mmsa.stages.finetune import finetune
from mmsa.stages.finished_seeds import seeds_folder

if __name__ == "__main__":
    sm = snakemake  # noqa: F821 (injected by Snakemake)
    configure_torch(sm.threads)
    with stage_logging(sm.log[0]):
        finetune(
            config=sm.params.config,
            dataset=sm.wildcards.dataset,
            model_name=sm.wildcards.model,
            shards_dir=sm.input.shards,
            manifests=sm.input.manifests,
            splits=sm.input.splits,
            results=sm.output.results,
            predictions=sm.output.predictions,
            weights=sm.output.get("weights", []),
            model_path=sm.input.get("model"),
            embeddings=sm.input.get("embeddings"),
            hypergraph_path=sm.input.get("hypergraph"),
            checkpoints=seeds_folder(results=sm.output.results),
        )
