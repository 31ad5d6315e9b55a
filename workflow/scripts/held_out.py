"""Snakemake adapter of the held_out rule (all logic in mmsa.stages.held_out)."""

from mmsa.runtime.logs import stage_logging
from mmsa.stages.held_out import held_out

if __name__ == "__main__":
    sm = snakemake  # noqa: F821 (injected by Snakemake)
    with stage_logging(sm.log[0]):
        held_out(
            sm.params.config,
            sm.wildcards.dataset,
            sm.input.shards,
            sm.input.manifests,
            sm.input.splits,
            sm.input.predictions,
            sm.output.table,
            sm.output.summary,
            sm.output.curve,
            sm.output.plot,
            sm.output.page,
        )
