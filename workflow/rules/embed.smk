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
    threads: config["torch_threads"]
    conda:
        "../../envs/mmsa.yaml"
    script:
        "../scripts/embed.py"
