"""Snakemake adapter of the reliability rule (all logic in mmsa.stages.held_out)."""

from mmsa.runtime.logs import stage_logging
from mmsa.stages.held_out import reliability

if __name__ == "__main__":
    sm = snakemake  # noqa: F821 (injected by Snakemake)
    with stage_logging(sm.log[0]):
        reliability(table_path=sm.input.table, dataset=sm.wildcards.dataset, plot_path=sm.output.plot)
