# How well the pretraining corpus covers each finetuning dataset's chemistry (size, weight,
# heavy atoms, elements, charged atoms), from the standardized molecules of their shards.


rule coverage:
    input:
        shards=expand("results/datasets/{dataset}/shards", dataset=DATASETS),
    output:
        csv="results/report/coverage.csv",
        md="results/report/coverage.md",
    params:
        config=stage_config(config, "coverage"),
        datasets=DATASETS,  # the order of input.shards
    log:
        "results/logs/report/coverage.log",
    benchmark:
        "results/benchmarks/report/coverage.tsv",
    resources:
        **job_resources("coverage"),
    conda:
        "../../envs/mmsa.yaml"
    script:
        "../scripts/coverage.py"
