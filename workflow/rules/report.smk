# The results table and plots over every (dataset, model, seed).


rule report:
    input:
        results=expand(
            "results/finetune/{dataset}/{model}/seed-{seed}.json",
            dataset=config["finetune"]["datasets"],
            model=config["finetune"]["models"],
            seed=SEEDS,
        ),
        splits=expand("results/splits/{dataset}.json", dataset=config["finetune"]["datasets"]),
        coverage=COVERAGE,
    output:
        csv=report("results/report/results.csv", category="Results"),
        comparisons=report("results/report/comparisons.csv", category="Results"),
        md="results/report/results.md",
        bars=report("results/report/results.png", category="Results"),
        curves=report("results/report/finetune_curves.png", category="Finetuning"),
    params:
        config=stage_config(config, "report"),
    log:
        "results/logs/report/report.log",
    benchmark:
        "results/benchmarks/report/report.tsv",
    resources:
        **job_resources("report"),
    conda:
        "../../envs/mmsa.yaml"
    script:
        "../scripts/report.py"
