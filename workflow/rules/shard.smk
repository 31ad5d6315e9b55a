# Fixed-size shards of the standardized rows. A checkpoint: the per-shard jobs downstream fan
# out over the shard files it writes. The pretraining dataset's shards leave out every molecule
# of the finetuning datasets (holdouts), so its shard job waits for their standardization.


checkpoint shard:
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
