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
        held_out=expand(
            "results/report/{dataset}/held_out_summary.csv", dataset=config["finetune"]["datasets"]
        ),
        reliability=expand("results/report/{dataset}/reliability.png", dataset=CLASSIFICATION),
    output:
        csv="results/report/results.csv",
        comparisons="results/report/comparisons.csv",
        # the two tables as HTML: the report's viewer offers a CSV only as a download; the front
        # page (workflow/report/workflow.rst) shows the results table too
        table_page=report(
            "results/report/results_table.html",
            category="Results",
            caption="../report/results_table.rst",
            labels={"figure": "results table"},
        ),
        comparisons_page=report(
            "results/report/comparisons.html",
            category="Results",
            caption="../report/comparisons.rst",
            labels={"figure": "paired comparisons"},
        ),
        md="results/report/results.md",
        bars=report(
            "results/report/results.png",
            category="Results",
            caption="../report/results_bars.rst",
            labels={"figure": "test metric per dataset"},
        ),
        curves=report(
            "results/report/finetune_curves.png",
            category="Finetuning",
            caption="../report/finetune_curves.rst",
            labels={"figure": "validation curves"},
        ),
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
