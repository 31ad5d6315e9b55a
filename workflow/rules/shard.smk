# Fixed-size shards of the standardized rows. Not a checkpoint: the number of shards follows from
# the config (mmsa.plan.datasets.n_shards) and every shard file is written, an empty shard as an
# empty table, so the per-shard jobs downstream are known before it runs (and can be grouped on a
# cluster). The pretraining dataset's shards leave out every molecule of the finetuning datasets
# (holdouts), so its shard job waits for their standardization.


rule shard:
    input:
        parts="results/datasets/{dataset}/standardized",
        holdouts=lambda wc: expand(
            "results/datasets/{holdout}/standardized",
            holdout=holdout_datasets(config, wc.dataset),
        ),
    output:
        shards=directory("results/datasets/{dataset}/shards"),
        rejects="results/datasets/{dataset}/rejects/shard.parquet",
    params:
        config=lambda wc: stage_config(config, "shard", wc.dataset),
        holdouts=lambda wc: holdout_datasets(config, wc.dataset),  # names of input.holdouts
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
