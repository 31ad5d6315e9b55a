"""The memory and wall time each rule's job asks a scheduler for, sized from measured runs.

Without them a cluster job gets the site's defaults: too little memory kills featurization,
too much keeps small jobs queued, and SLURM warns (or refuses) without a wall time. So every
rule declares ``resources: **job_resources("<rule>")`` and the numbers live here, once.

What was measured (``benchmark:`` files under ``results/benchmarks/``, one per job, read by
``benchmarks/job_resources.py``):

* peak memory: the largest ``max_rss`` (process and children) of the rule's jobs in runs of the
  default config's data, corpus and model (issue 32's screen at 5787e4c: ``config/default.yaml``
  with 10 seeds per finetuning job and up to 5 pretraining epochs), on 2 CPU cores;
* wall time: the longest job of the rule in a run of ``config/default.yaml`` on 2 CPU cores
  (Snakemake's job records of the fresh-clone run the README reports).

A job asks for :data:`MARGIN` times each, rounded up, and at least :data:`MIN_MEM_MB` and
:data:`MIN_RUNTIME_MIN`, times its attempt: one killed for running out of either is retried
(``retries`` in ``profiles/slurm``) with twice, then three times as much. Larger configs
(``config/paper.yaml``) grow past that for the heaviest rules: a site runs its config once (or a
smaller one with the same model and data per job), and ``benchmarks/job_resources.py`` prints
the ``set-resources`` block for its site file from that run's benchmark files. This module must
not import RDKit or torch: the Snakefile's process reads it.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Measured:
    """One rule's largest job: peak resident memory (MB) and wall time (seconds)."""

    peak_mb: float
    wall_s: float


MEASURED: dict[str, Measured] = {
    # rule: Measured(peak MB on the default config's data and model, longest s on config/default.yaml)
    "fetch": Measured(167, 4.4),
    "standardize": Measured(405, 8.1),
    "shard": Measured(376, 3.8),
    "featurize": Measured(717, 146.1),
    "account": Measured(178, 1.8),
    "pretrain": Measured(1202, 246.9),
    "given_weights": Measured(287, 47.5),  # both on config/test.yaml, wall on a loaded machine (load 5)
    "split": Measured(216, 6.4),
    "embed": Measured(987, 13.0),
    "hypergraph": Measured(630, 7.7),
    "finetune": Measured(929, 334.5),
    "classical": Measured(665, 46.9),
    "held_out": Measured(615, 12.5),
    "reliability": Measured(575, 6.5),
    "report": Measured(559, 6.4),
    "coverage": Measured(197, 9.0),  # no benchmark file yet: a direct run on 10K ZINC, BBBP, BACE, ClinTox
}
MARGIN = 2.0
MIN_MEM_MB = 1000  # a floor for the small jobs, whose data grows with larger configs
# a job's start-up: Python, torch and RDKit imported from a site's network file system can take a
# minute or two before the first measured second of work
MIN_RUNTIME_MIN = 5


def request(measured: Measured) -> tuple[int, int]:
    """What a job measured so asks for: (memory in MB, wall time in minutes), :data:`MARGIN`
    times each, rounded up to 100 MB and 1 minute, at least the floors."""
    mem_mb = max(MIN_MEM_MB, 100 * math.ceil(MARGIN * measured.peak_mb / 100))
    runtime = max(MIN_RUNTIME_MIN, math.ceil(MARGIN * measured.wall_s / 60))
    return mem_mb, runtime


def base_request(rule: str) -> tuple[int, int]:
    """A rule's first-attempt request: (memory in MB, wall time in minutes)."""
    return request(MEASURED[rule])


def job_resources(rule: str) -> dict[str, Callable[..., int]]:
    """The ``mem_mb`` and ``runtime`` resources of a rule, each growing with the attempt."""
    mem_mb, runtime = base_request(rule)

    def memory(wildcards, attempt: int) -> int:
        return mem_mb * attempt

    def minutes(wildcards, attempt: int) -> int:
        return runtime * attempt

    return {"mem_mb": memory, "runtime": minutes}
