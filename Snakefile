# mmsa: multi-modal molecular representation learning with structure awareness.
# Run `snakemake --cores N` for the default configuration (config/default.yaml),
# `snakemake --cores N --configfile config/test.yaml` for the tiny one. Each config file is
# whole: config/default.yaml is read only when no --configfile is given, so no file patches another.

import os

from snakemake.utils import min_version

min_version("9.0")


# the front page of `snakemake --report report.html`; every figure's caption is in workflow/report/
report: "workflow/report/workflow.rst"


if not workflow.config_settings.configfiles:

    configfile: os.path.join(workflow.basedir, "config/default.yaml")



include: "workflow/rules/common.smk"
include: "workflow/rules/fetch.smk"
include: "workflow/rules/standardize.smk"
include: "workflow/rules/shard.smk"
include: "workflow/rules/featurize.smk"
include: "workflow/rules/account.smk"
if config["pretrain"]["weights"]:  # a model pretrained before, checked and copied

    include: "workflow/rules/given_weights.smk"

else:

    include: "workflow/rules/pretrain.smk"

include: "workflow/rules/split.smk"
include: "workflow/rules/embed.smk"
include: "workflow/rules/hypergraph.smk"
include: "workflow/rules/finetune.smk"
include: "workflow/rules/classical.smk"
include: "workflow/rules/held_out.smk"
include: "workflow/rules/reliability.smk"
include: "workflow/rules/report.smk"
include: "workflow/rules/coverage.smk"


rule all:
    input:
        expand("results/datasets/{dataset}/accounting.json", dataset=DATASETS),
        "results/pretrain/model.pt",
        "results/report/results.md",
        COVERAGE,
    default_target: True
