# embed -> hypergraph -> finetune (dataset x model x seed) -> report.


rule embed:
    input:
        model="results/pretrain/model.pt",
        manifests=lambda wc: manifests_of(wc.dataset),
    output:
        "results/embeddings/{dataset}.parquet",
    log:
        "results/logs/embed/{dataset}.log",
    threads: 2
    conda:
        "../../envs/torch.yaml"
    script:
        "../scripts/embed.py"


rule hypergraph:
    input:
        "results/embeddings/{dataset}.parquet",
    output:
        incidence="results/hypergraph/{dataset}.parquet",
        stats="results/hypergraph/{dataset}.json",
    params:
        k=config["finetune"]["hypergraph_k"],
    log:
        "results/logs/hypergraph/{dataset}.log",
    conda:
        "../../envs/torch.yaml"
    script:
        "../scripts/hypergraph.py"


rule finetune:
    input:
        unpack(finetune_inputs),
    output:
        result="results/finetune/{dataset}/{model}/seed-{seed}.json",
        weights="results/finetune/{dataset}/{model}/seed-{seed}.pt",
    wildcard_constraints:
        model=r"mmsa|mmsa-graph|no-pretrain",
    params:
        settings=config["finetune"]["settings"],
    log:
        "results/logs/finetune/{dataset}-{model}-{seed}.log",
    threads: 1
    resources:
        mem_mb=4000,
    conda:
        "../../envs/torch.yaml"
    script:
        "../scripts/finetune.py"


rule baseline:
    input:
        unpack(finetune_inputs),
    output:
        result="results/finetune/{dataset}/{model}/seed-{seed}.json",
    wildcard_constraints:
        model=r"ecfp-rf",
    params:
        settings=config["finetune"]["settings"],
    log:
        "results/logs/finetune/{dataset}-{model}-{seed}.log",
    threads: 1
    conda:
        "../../envs/torch.yaml"
    script:
        "../scripts/finetune.py"


rule report:
    input:
        expand(
            "results/finetune/{dataset}/{model}/seed-{seed}.json",
            dataset=config["finetune"]["datasets"],
            model=config["finetune"]["models"],
            seed=config["finetune"]["seeds"],
        ),
    output:
        csv=report("results/report/results.csv", category="Results"),
        md="results/report/results.md",
        bars=report("results/report/results.png", category="Results"),
        curves=report("results/report/finetune_curves.png", category="Finetuning"),
    log:
        "results/logs/report/report.log",
    conda:
        "../../envs/torch.yaml"
    script:
        "../scripts/report.py"
