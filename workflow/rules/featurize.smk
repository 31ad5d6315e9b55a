# One job per shard: graph, conformer and image features into the shared feature cache
# (computed only for molecules the cache lacks); Dask inside the job uses its threads.


rule featurize:
    input:
        shards="results/datasets/{dataset}/shards",  # the shard rule's folder; this job reads one file
    output:
        manifest="results/features/{dataset}/shard-{shard}.parquet",
        rejects="results/features/{dataset}/rejects-{shard}.parquet",
    params:
        config=stage_config(config, "featurize"),
    log:
        "results/logs/featurize/{dataset}-{shard}.log",
    benchmark:
        "results/benchmarks/featurize/{dataset}-{shard}.tsv",
    threads: 4
    resources:
        **job_resources("featurize"),
    conda:
        "../../envs/mmsa.yaml"
    script:
        "../scripts/featurize.py"
