"""Snakemake adapter of the fetch rule (all logic in mmsa.stages.fetch)."""

from mmsa.runtime.logs import stage_logging
from mmsa.stages.fetch import fetch

if __name__ == "__main__":
    with stage_logging(snakemake.log[0]):  # noqa: F821 (injected by Snakemake)
        fetch(
            config=snakemake.params.config,  # noqa: F821
            dataset=snakemake.wildcards.dataset,  # noqa: F821
            out=snakemake.output.raw,  # noqa: F821
        )
