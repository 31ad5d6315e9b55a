# Each dataset's rows as its source has them (registry archive, URL or local folder), row limits applied.


rule fetch:
    output:
        raw="results/datasets/{dataset}/raw.parquet",
    params:
        config=lambda wc: stage_config(config, "fetch", wc.dataset),
        # the registry entry (URL, checksums, columns): a changed entry fetches again
        spec=lambda wc: fetched_from(config, wc.dataset),
    log:
        "results/logs/fetch/{dataset}.log",
    benchmark:
        "results/benchmarks/fetch/{dataset}.tsv",
    resources:
        **job_resources("fetch"),
    conda:
        "../../envs/mmsa.yaml"
    script:
        "../scripts/fetch.py"
