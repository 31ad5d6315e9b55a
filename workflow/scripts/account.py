"""Snakemake adapter of the account rule (all logic in mmsa.stages.account)."""

from mmsa.runtime.logs import stage_logging
from mmsa.stages.account import account

if __name__ == "__main__":
    sm = snakemake  # noqa: F821 (injected by Snakemake)
    with stage_logging(sm.log[0]):
        account(
            sm.wildcards.dataset,
            sm.input.raw,
            sm.input.rejects,
            sm.input.manifests,
            sm.output.summary,
            sm.output.rejects,
        )
