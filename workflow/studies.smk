# A study: several runs of the pipeline, each a config overlay, paired seed by seed on one split
# (mmsa/plan/studies.py says what a study file holds). Each run is the main workflow as a module,
# in runs/<run>/ of the working folder; all runs form one DAG, so they proceed side by side and
# an interrupted study resumes job by job. Run it from the repository root:
#   snakemake -s workflow/studies.smk --config study=config/studies/<name>.yaml \
#       --directory <folder> --cores N
# The tables: <folder>/study/study.md, comparisons.csv and scores.csv (every per-seed result).

import os
import re

from mmsa.plan.config import ConfigError
from mmsa.plan.studies import RUNS_DIR, load_study

REPO = os.path.dirname(workflow.basedir)
if "study" not in config:
    raise WorkflowError("name the study file: --config study=config/studies/<name>.yaml")
try:
    STUDY = load_study(os.path.join(REPO, config["study"]), REPO)
except ConfigError as err:
    raise WorkflowError(str(err)) from None

for run in STUDY.runs:
    rule_prefix = re.sub(r"\W", "_", run) + "__"  # rule names: <run>__<rule>

    module:
        name: run
        snakefile: os.path.join(REPO, "Snakefile")
        config: STUDY.config(run)
        prefix: f"{RUNS_DIR}/{run}"

    use rule * from run as rule_prefix*


rule study_report:
    input:
        results=[path for run in STUDY.runs for path in STUDY.result_files(run)],
        splits=[path for run in STUDY.runs for path in STUDY.split_files(run)],
    output:
        scores="study/scores.csv",
        comparisons="study/comparisons.csv",
        markdown="study/study.md",
    params:
        study=os.path.join(REPO, config["study"]),
        repo=REPO,
    log:
        "study/study_report.log",
    default_target: True
    script:
        "scripts/study_report.py"
