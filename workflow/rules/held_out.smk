# Per dataset: every model's held-out predictions against each seed's training molecules
# (error against similarity, applicability domain, ensemble, calibration), one report category each.


rule held_out:
    input:
        shards="results/datasets/{dataset}/shards",
        manifests=lambda wc: manifests_of(wc.dataset),
        splits="results/splits/{dataset}.parquet",
        predictions=held_out_predictions,
    output:
        table="results/report/{dataset}/held_out.parquet",
        summary="results/report/{dataset}/held_out_summary.csv",
        page=report(
            "results/report/{dataset}/held_out_summary.html",
            category="{dataset}",
            caption="../report/held_out_summary.rst",
            labels={"figure": "ensemble, calibration and domain (table)"},
        ),
        curve="results/report/{dataset}/error_vs_similarity.csv",
        plot=report(
            "results/report/{dataset}/error_vs_similarity.png",
            category="{dataset}",
            caption="../report/error_vs_similarity.rst",
            labels={"figure": "error against similarity"},
        ),
    params:
        config=lambda wc: stage_config(config, "held_out", wc.dataset),
    log:
        "results/logs/held_out/{dataset}.log",
    benchmark:
        "results/benchmarks/held_out/{dataset}.tsv",
    resources:
        **job_resources("held_out"),
    conda:
        "../../envs/mmsa.yaml"
    script:
        "../scripts/held_out.py"

