"""Snakemake adapter of the given_weights rule (all logic in mmsa.stages.given_weights)."""

import os

from mmsa.runtime.logs import stage_logging
from mmsa.stages.given_weights import place_weights

if __name__ == "__main__":
    sm = snakemake  # noqa: F821 (injected by Snakemake)
    with stage_logging(sm.log[0]):
        place_weights(
            config=sm.params.config, weights=sm.input.weights, out_dir=os.path.dirname(sm.output.model)
        )
