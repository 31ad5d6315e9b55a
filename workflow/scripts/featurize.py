"""Snakemake adapter of the featurize rule (all logic in mmsa.stages.featurize)."""

from mmsa.data.key_shards import shard_path
from mmsa.plan.config_slices import placement
from mmsa.runtime.logs import stage_logging
from mmsa.stages.featurize import featurize

# Dask worker processes re-import this file, so the work runs only under __main__.
if __name__ == "__main__":
    sm = snakemake  # noqa: F821 (injected by Snakemake)
    with stage_logging(sm.log[0]):
        featurize(
            config=sm.params.config,
            shard_file=shard_path(sm.input.shards, int(sm.wildcards.shard)),
            manifest=sm.output.manifest,
            rejects=sm.output.rejects,
            threads=sm.threads,
            **placement(sm.config, "featurize"),  # not a param: see mmsa.plan.config_slices
        )
