# Fixed-size shards of the standardized rows. A checkpoint: the per-shard jobs downstream fan
# out over the shard files it writes.


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
    benchmark:
        "results/benchmarks/shard/{dataset}.tsv",
    threads: 4
    resources:
        **job_resources("shard"),
    conda:
        "../../envs/mmsa.yaml"
    script:
        "../scripts/shard.py"
