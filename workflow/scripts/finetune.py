"""Snakemake adapter of the finetune and baseline rules (all logic in mmsa.stages.finetune)."""

from mmsa.runtime.logs import stage_logging
from mmsa.runtime.reproducible import configure_torch
from mmsa.stages.finetune import finetune

if __name__ == "__main__":
    sm = snakemake  # noqa: F821 (injected by Snakemake)
    configure_torch(sm.threads)
    with stage_logging(sm.log[0]):
        finetune(
            sm.params.config,
            sm.wildcards.dataset,
            sm.wildcards.model,
            sm.input.shards,
            sm.input.manifests,
            sm.input.splits,
            sm.output.results,
            sm.output.predictions,
            sm.output.get("weights", []),
            model_path=sm.input.get("model"),
            embeddings=sm.input.get("embeddings"),
            hypergraph_path=sm.input.get("hypergraph"),
        )
