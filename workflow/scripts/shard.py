"""Snakemake adapter of the shard checkpoint (all logic in mmsa.stages.shard)."""

from mmsa.plan.config_slices import placement
from mmsa.runtime.logs import stage_logging
from mmsa.stages.shard import shard

# Dask worker processes re-import this file, so the work runs only under __main__.
if __name__ == "__main__":
    sm = snakemake  # noqa: F821 (injected by Snakemake)
    with stage_logging(sm.log[0]):
        shard(
            config=sm.params.config,
            dataset=sm.wildcards.dataset,
            standardized=sm.input.parts,
            out_dir=sm.output.shards,
            rejects=sm.output.rejects,
            threads=sm.threads,
            holdouts=dict(zip(sm.params.holdouts, sm.input.holdouts, strict=True)),
            **placement(sm.config, "shard"),  # not a param: see mmsa.plan.config_slices
        )
