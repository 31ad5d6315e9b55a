"""Snakemake adapter of the held_out rule (all logic in mmsa.stages.held_out)."""

from mmsa.runtime.logs import stage_logging
from mmsa.stages.held_out import held_out

if __name__ == "__main__":
    sm = snakemake  # noqa: F821 (injected by Snakemake)
    with stage_logging(sm.log[0]):
        held_out(
            config=sm.params.config,
            dataset=sm.wildcards.dataset,
            shards_dir=sm.input.shards,
            manifests=sm.input.manifests,
            splits=sm.input.splits,
            predictions=sm.input.predictions,
            table_path=sm.output.table,
            summary_path=sm.output.summary,
            curve_path=sm.output.curve,
            plot_path=sm.output.plot,
            page_path=sm.output.page,
        )
