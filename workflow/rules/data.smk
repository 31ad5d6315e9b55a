# fetch -> standardize -> shard, then the accounting check that no row was lost.


rule fetch:
    output:
        raw="results/datasets/{dataset}/raw.parquet",
    params:
        config=lambda wc: stage_config(config, "fetch", wc.dataset),
        # the registry entry (URL, checksums, columns): a changed entry fetches again
        spec=lambda wc: dataset_spec(config, wc.dataset).to_dict(),
    log:
        "results/logs/fetch/{dataset}.log",
    conda:
        "../../envs/data.yaml"
    script:
        "../scripts/fetch.py"


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
    threads: 4
    conda:
        "../../envs/data.yaml"
    script:
        "../scripts/standardize.py"


checkpoint shard:
    input:
        parts="results/datasets/{dataset}/standardized",
    output:
        shards=directory("results/datasets/{dataset}/shards"),
        rejects="results/datasets/{dataset}/rejects/shard.parquet",
    params:
        config=lambda wc: stage_config(config, "shard", wc.dataset),
    log:
        "results/logs/shard/{dataset}.log",
    threads: 4
    conda:
        "../../envs/data.yaml"
    script:
        "../scripts/shard.py"


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
    conda:
        "../../envs/data.yaml"
    script:
        "../scripts/account.py"
