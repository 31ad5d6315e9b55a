# Self-supervised MMSA pretraining on the featurized corpus, in pretrain.processes torchrun ranks.
# Uses a GPU per rank when the job has them (a site asks for them in profiles/slurm/site.yaml),
# else the CPU. Resumes from its per-epoch checkpoint.


rule pretrain:
    input:
        manifests=lambda wc: manifests_of(config["pretrain"]["dataset"]),
    output:
        model="results/pretrain/model.pt",
        config="results/pretrain/config.json",
        losses="results/pretrain/losses.csv",
        curve=report(
            "results/pretrain/loss_curve.png",
            category="Pretraining",
            caption="../report/loss_curve.rst",
            labels={"figure": "loss curve"},
        ),
        throughput="results/pretrain/throughput.json",
    log:
        "results/logs/pretrain/pretrain.log",
    benchmark:
        "results/benchmarks/pretrain/pretrain.tsv",
    params:
        # beside the outputs (a study's module prefixes outputs, not params)
        checkpoint=lambda wc, output: os.path.join(os.path.dirname(output.model), "checkpoints", "last.pt"),
        config=stage_config(config, "pretrain"),
    threads: config["torch_threads"] * config["pretrain"]["processes"]  # torch_threads per rank
    resources:
        **job_resources("pretrain"),
    conda:
        "../../envs/mmsa.yaml"
    script:
        "../scripts/pretrain.py"
