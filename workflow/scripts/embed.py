"""Snakemake adapter of the embed rule (all logic in mmsa.stages)."""

import torch

from mmsa.logs import stage_logging
from mmsa.stages import embed

if __name__ == "__main__":
    sm = snakemake  # noqa: F821 (injected by Snakemake)
    torch.set_num_threads(sm.threads)
    with stage_logging(sm.log[0]):
        embed(sm.config, sm.input.model, sm.input.manifests, sm.output[0])
