# Per classification dataset: the reliability diagram of every model before and after temperature
# scaling, from the held-out table.


rule reliability:
    input:
        table="results/report/{dataset}/held_out.parquet",
    output:
        plot=report(
            "results/report/{dataset}/reliability.png",
            category="{dataset}",
            caption="../report/reliability.rst",
            labels={"figure": "reliability diagram"},
        ),
    wildcard_constraints:
        dataset="|".join(CLASSIFICATION) or "^$",
    log:
        "results/logs/reliability/{dataset}.log",
    benchmark:
        "results/benchmarks/reliability/{dataset}.tsv",
    resources:
        **job_resources("reliability"),
    conda:
        "../../envs/mmsa.yaml"
    script:
        "../scripts/reliability.py"
