"""Snakemake adapter of the split rule (all logic in mmsa.stages.split)."""

from mmsa.runtime.logs import stage_logging
from mmsa.stages.split import split

if __name__ == "__main__":
    sm = snakemake  # noqa: F821 (injected by Snakemake)
    with stage_logging(sm.log[0]):
        split(
            config=sm.params.config,
            dataset=sm.wildcards.dataset,
            shards_dir=sm.input.shards,
            manifests=sm.input.manifests,
            out=sm.output.table,
            stats_out=sm.output.stats,
        )
