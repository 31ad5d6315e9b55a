"""Snakemake adapter of the reliability rule (all logic in mmsa.stages.held_out)."""

from mmsa.runtime.logs import stage_logging
from mmsa.stages.held_out import reliability

if __name__ == "__main__":
    sm = snakemake  # noqa: F821 (injected by Snakemake)
    with stage_logging(sm.log[0]):
        reliability(sm.input.table, sm.wildcards.dataset, sm.output.plot)
