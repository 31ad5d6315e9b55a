# Self-supervised MMSA pretraining on the featurized corpus. Uses a GPU when the job has one
# (resources gpu=N on clusters, N = pretrain.processes, each rank of torchrun on its own GPU),
# else the CPU. Resumes from its per-epoch checkpoint.


rule pretrain:
    input:
        manifests=lambda wc: manifests_of(config["pretrain"]["dataset"]),
    output:
        model="results/pretrain/model.pt",
        config="results/pretrain/config.json",
        losses="results/pretrain/losses.csv",
        curve=report("results/pretrain/loss_curve.png", category="Pretraining"),
        throughput="results/pretrain/throughput.json",
    log:
        "results/logs/pretrain/pretrain.log",
    params:
        checkpoint="results/pretrain/checkpoints/last.pt",
        config=stage_config(config, "pretrain"),
    threads: config["torch_threads"]
    resources:
        gpu=config["pretrain"]["processes"],
        mem_mb=8000,
    conda:
        "../../envs/torch.yaml"
    script:
        "../scripts/pretrain.py"
