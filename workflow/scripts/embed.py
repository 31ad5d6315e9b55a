"""Snakemake adapter of the embed rule (all logic in mmsa.stages.embed)."""

from mmsa.runtime.logs import stage_logging
from mmsa.runtime.reproducible import configure_torch
from mmsa.stages.embed import embed

if __name__ == "__main__":
    sm = snakemake  # noqa: F821 (injected by Snakemake)
    configure_torch(sm.params.config["torch_threads"])
    with stage_logging(sm.log[0]):
        embed(
            config=sm.params.config, model_path=sm.input.model, manifests=sm.input.manifests, out=sm.output[0]
        )
