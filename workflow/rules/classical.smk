# Classical models (random forests and the linear probe on fixed features: fingerprints, descriptors,
# frozen MMSA embeddings), one job per (dataset, model) running every
# seed on the same split table as the neural models of finetune.smk.


rule classical:
    input:
        unpack(finetune_inputs),
    output:
        results=per_seed("results/finetune/{dataset}/{model}/seed-{seed}.json"),
        predictions=per_seed("results/finetune/{dataset}/{model}/seed-{seed}.predictions.parquet"),
    wildcard_constraints:
        model="|".join(CLASSICAL),
    params:
        config=lambda wc: stage_config(config, "finetune", wc.dataset, wc.model),
    log:
        "results/logs/finetune/{dataset}-{model}.log",
    benchmark:
        "results/benchmarks/classical/{dataset}-{model}.tsv",
    threads: 1
    resources:
        **job_resources("classical"),
    conda:
        "../../envs/mmsa.yaml"
    script:
        "../scripts/finetune.py"
