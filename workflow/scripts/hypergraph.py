"""Snakemake adapter of the hypergraph rule (all logic in mmsa.stages.hypergraph)."""

from mmsa.runtime.logs import stage_logging
from mmsa.stages.hypergraph import hypergraph

if __name__ == "__main__":
    sm = snakemake  # noqa: F821 (injected by Snakemake)
    with stage_logging(sm.log[0]):
        hypergraph(
            config=sm.params.config,
            embeddings=sm.input.embeddings,
            splits=sm.input.splits,
            out=sm.output.incidence,
            stats_out=sm.output.stats,
        )
