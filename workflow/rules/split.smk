# One train/valid/test split table per dataset, read by every model of the comparison.


rule split:
    input:
        shards="results/datasets/{dataset}/shards",
        manifests=lambda wc: manifests_of(wc.dataset),
    output:
        table="results/splits/{dataset}.parquet",
        stats="results/splits/{dataset}.json",
    params:
        config=lambda wc: stage_config(config, "split", wc.dataset),
    log:
        "results/logs/split/{dataset}.log",
    benchmark:
        "results/benchmarks/split/{dataset}.tsv",
    resources:
        **job_resources("split"),
    conda:
        "../../envs/mmsa.yaml"
    script:
        "../scripts/split.py"
