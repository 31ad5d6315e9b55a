"""Snakemake adapter of the coverage rule (all logic in mmsa.data.coverage)."""

from mmsa.data.coverage import write_coverage
from mmsa.runtime.logs import stage_logging

if __name__ == "__main__":
    sm = snakemake  # noqa: F821 (injected by Snakemake)
    with stage_logging(sm.log[0]):
        write_coverage(
            corpus=sm.params.config["pretrain"]["dataset"],
            shards=dict(zip(sm.params.datasets, sm.input.shards, strict=True)),
            csv_path=sm.output.csv,
            md_path=sm.output.md,
        )
