"""Snakemake adapter of the embed rule (all logic in mmsa.stages.embed)."""

from mmsa.runtime.logs import stage_logging
from mmsa.runtime.reproducible import configure_torch
from mmsa.stages.embed import embed

if __name__ == "__main__":
    sm = snakemake  # noqa: F821 (injected by Snakemake)
    configure_torch(sm.params.config["torch_threads"])
    with stage_logging(sm.log[0]):
        embed(sm.params.config, sm.input.model, sm.input.manifests, sm.output[0])
