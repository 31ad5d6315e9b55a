"""Snakemake adapter of the account rule (all logic in mmsa.stages.account)."""

from mmsa.runtime.logs import stage_logging
from mmsa.stages.account import account

if __name__ == "__main__":
    sm = snakemake  # noqa: F821 (injected by Snakemake)
    with stage_logging(sm.log[0]):
        account(
            dataset=sm.wildcards.dataset,
            raw=sm.input.raw,
            rejects=sm.input.rejects,
            manifests=sm.input.manifests,
            summary=sm.output.summary,
            rejects_csv=sm.output.rejects,
        )
