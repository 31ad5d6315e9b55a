"""Snakemake adapter of the standardize rule (all logic in mmsa.stages.standardize)."""

from mmsa.plan.config_slices import placement
from mmsa.runtime.logs import stage_logging
from mmsa.stages.standardize import standardize

# Dask worker processes re-import this file, so the work runs only under __main__.
if __name__ == "__main__":
    sm = snakemake  # noqa: F821 (injected by Snakemake)
    with stage_logging(sm.log[0]):
        standardize(
            config=sm.params.config,
            dataset=sm.wildcards.dataset,
            raw=sm.input.raw,
            out_dir=sm.output.parts,
            rejects=sm.output.rejects,
            threads=sm.threads,
            **placement(sm.config, "standardize"),  # not a param: see mmsa.plan.config_slices
        )
