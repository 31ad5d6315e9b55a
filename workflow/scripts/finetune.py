"""Snakemake adapter of the finetune and baseline rules (all logic in mmsa.stages)."""

import torch

from mmsa.logs import stage_logging
from mmsa.stages import finetune

if __name__ == "__main__":
    sm = snakemake  # noqa: F821 (injected by Snakemake)
    torch.set_num_threads(sm.threads)
    with stage_logging(sm.log[0]):
        finetune(
            sm.config,
            sm.wildcards.dataset,
            sm.wildcards.model,
            int(sm.wildcards.seed),
            sm.input.shards,
            sm.input.manifests,
            sm.output.result,
            model_path=sm.input.get("model"),
            embeddings=sm.input.get("embeddings"),
            hypergraph_path=sm.input.get("hypergraph"),
            weights_out=sm.output.get("weights"),
        )
