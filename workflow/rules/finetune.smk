# Neural models, one job per (dataset, model) running every seed (weights saved for
# `mmsa predict`). Every job reads the dataset's split table; classical models: classical.smk.


rule finetune:
    input:
        unpack(finetune_inputs),
    output:
        results=per_seed("results/finetune/{dataset}/{model}/seed-{seed}.json"),
        predictions=per_seed("results/finetune/{dataset}/{model}/seed-{seed}.predictions.parquet"),
        weights=per_seed("results/finetune/{dataset}/{model}/seed-{seed}.pt"),
    wildcard_constraints:
        model="|".join(NEURAL),
    params:
        config=lambda wc: stage_config(config, "finetune", wc.dataset, wc.model),
    log:
        "results/logs/finetune/{dataset}-{model}.log",
    benchmark:
        "results/benchmarks/finetune/{dataset}-{model}.tsv",
    threads: 1
    resources:
        **job_resources("finetune"),
    conda:
        "../../envs/mmsa.yaml"
    script:
        "../scripts/finetune.py"

