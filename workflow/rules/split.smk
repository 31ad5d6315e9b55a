# One train/valid/test split table per dataset, read by every model of the comparison.


rule split:
    input:
        shards="results/datasets/{dataset}/shards",
        manifests=lambda wc: manifests_of(wc.dataset),
    output:
        table="results/splits/{dataset}.parquet",
        stats="results/splits/{dataset}.json",
    params:
        kind=config["finetune"]["settings"]["split"],
        fractions=config["finetune"]["settings"]["split_fractions"],
        seeds=SEEDS,
    log:
        "results/logs/split/{dataset}.log",
    conda:
        "../../envs/data.yaml"
    script:
        "../scripts/split.py"
