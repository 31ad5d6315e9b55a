"""Snakemake adapter of the report rule (all logic in mmsa.stages.report)."""

from mmsa.runtime.logs import stage_logging
from mmsa.stages.report import report

if __name__ == "__main__":
    sm = snakemake  # noqa: F821 (injected by Snakemake)
    with stage_logging(sm.log[0]):
        report(
            results=sm.input.results,
            csv_path=sm.output.csv,
            md_path=sm.output.md,
            bars=sm.output.bars,
            curves=sm.output.curves,
            config=sm.params.config,
            split_stats=sm.input.splits,
            comparisons_path=sm.output.comparisons,
            coverage=sm.input.coverage,
            held_out=sm.input.held_out,
            table_page=sm.output.table_page,
            comparisons_page=sm.output.comparisons_page,
        )
