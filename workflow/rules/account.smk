# The accounting check that no row was lost: every fetched row is featurized or rejected with a reason.


rule account:
    input:
        raw="results/datasets/{dataset}/raw.parquet",
        rejects=lambda wc: [
            f"results/datasets/{wc.dataset}/rejects/standardize.parquet",
            f"results/datasets/{wc.dataset}/rejects/shard.parquet",
            *feature_rejects_of(wc.dataset),
        ],
        manifests=lambda wc: manifests_of(wc.dataset),
    output:
        summary="results/datasets/{dataset}/accounting.json",
        rejects="results/datasets/{dataset}/rejects.csv",
    log:
        "results/logs/account/{dataset}.log",
    benchmark:
        "results/benchmarks/account/{dataset}.tsv",
    resources:
        **job_resources("account"),
    conda:
        "../../envs/mmsa.yaml"
    script:
        "../scripts/account.py"
