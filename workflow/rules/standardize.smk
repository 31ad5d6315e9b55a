# RDKit standardization of every fetched molecule; rows that fail go to the rejects table.


rule standardize:
    input:
        raw="results/datasets/{dataset}/raw.parquet",
    output:
        parts=directory("results/datasets/{dataset}/standardized"),
        rejects="results/datasets/{dataset}/rejects/standardize.parquet",
    params:
        config=lambda wc: stage_config(config, "standardize", wc.dataset),
    log:
        "results/logs/standardize/{dataset}.log",
    benchmark:
        "results/benchmarks/standardize/{dataset}.tsv",
    threads: 4
    resources:
        **job_resources("standardize"),
    conda:
        "../../envs/mmsa.yaml"
    script:
        "../scripts/standardize.py"
