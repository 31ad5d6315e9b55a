"""Snakemake adapter of the pretrain rule (all logic in mmsa.stages)."""

import os

from mmsa.logs import stage_logging
from mmsa.reproducible import configure_torch
from mmsa.stages import pretrain

# DataLoader worker processes re-import this file, so the work runs only under __main__.
if __name__ == "__main__":
    sm = snakemake  # noqa: F821 (injected by Snakemake)
    configure_torch(sm.params.config["torch_threads"])
    with stage_logging(sm.log[0]):
        pretrain(sm.params.config, sm.input.manifests, os.path.dirname(sm.output.model), sm.params.checkpoint)
