"""Snakemake adapter of the pretrain rule (all logic in mmsa.stages.pretrain and mmsa.stages.torchrun).

With ``pretrain.processes`` > 1 the stage runs as that many ``torchrun`` ranks (rank 0 writes
the log); otherwise in this process.
"""

import os

from mmsa.stages.torchrun import launch, run_stage

# DataLoader worker processes re-import this file, so the work runs only under __main__.
if __name__ == "__main__":
    sm = snakemake  # noqa: F821 (injected by Snakemake)
    config, out_dir = sm.params.config, os.path.dirname(sm.output.model)
    start = launch if config["pretrain"]["processes"] > 1 else run_stage
    start(
        config=config,
        manifests=sm.input.manifests,
        out_dir=out_dir,
        checkpoint=sm.params.checkpoint,
        log_file=sm.log[0],
    )
