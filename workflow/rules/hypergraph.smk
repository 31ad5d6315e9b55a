# Each split's kNN hypergraph over the training molecules (no labels; held-out molecules are
# attached at prediction time, as `mmsa predict` does).


rule hypergraph:
    input:
        embeddings="results/embeddings/{dataset}.parquet",
        splits="results/splits/{dataset}.parquet",
    output:
        incidence="results/hypergraph/{dataset}.parquet",
        stats="results/hypergraph/{dataset}.json",
    params:
        config=stage_config(config, "hypergraph"),
    log:
        "results/logs/hypergraph/{dataset}.log",
    benchmark:
        "results/benchmarks/hypergraph/{dataset}.tsv",
    resources:
        **job_resources("hypergraph"),
    conda:
        "../../envs/mmsa.yaml"
    script:
        "../scripts/hypergraph.py"
