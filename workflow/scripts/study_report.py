"""Snakemake adapter of the study_report rule (all logic in mmsa.stages.study_report)."""

from mmsa.runtime.logs import stage_logging
from mmsa.stages.study_report import study_report

if __name__ == "__main__":
    sm = snakemake  # noqa: F821 (injected by Snakemake)
    with stage_logging(sm.log[0]):
        study_report(
            study_path=sm.params.study,
            repo=sm.params.repo,
            folder=".",
            scores_csv=sm.output.scores,
            comparisons_csv=sm.output.comparisons,
            markdown=sm.output.markdown,
        )
