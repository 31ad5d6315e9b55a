# Frozen fused MMSA embeddings of every featurized molecule of a dataset.


rule embed:
    input:
        model="results/pretrain/model.pt",
        manifests=lambda wc: manifests_of(wc.dataset),
    output:
        "results/embeddings/{dataset}.parquet",
    params:
        config=stage_config(config, "embed"),
    log:
        "results/logs/embed/{dataset}.log",
    benchmark:
        "results/benchmarks/embed/{dataset}.tsv",
    threads: config["torch_threads"]
    resources:
        **job_resources("embed"),
    conda:
        "../../envs/mmsa.yaml"
    script:
        "../scripts/embed.py"
