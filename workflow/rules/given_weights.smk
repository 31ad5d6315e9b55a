# A model pretrained before (pretrain.weights), included instead of pretrain.smk: checked
# against this config's features and GIN (mmsa.plan.pretrained_weights) and copied as the pretrained model
# that embed and finetune read. The pretraining corpus is not needed. The path is the working
# directory's, as the config says, made absolute here: in a study this workflow is a module whose
# prefix (runs/<run>/) Snakemake puts before every relative input.


rule given_weights:
    input:
        weights=os.path.abspath(config["pretrain"]["weights"]),
    output:
        model="results/pretrain/model.pt",
        config="results/pretrain/config.json",
    log:
        "results/logs/pretrain/given_weights.log",
    benchmark:
        "results/benchmarks/pretrain/given_weights.tsv",
    params:
        config=stage_config(config, "given_weights"),
    resources:
        **job_resources("given_weights"),
    conda:
        "../../envs/mmsa.yaml"
    script:
        "../scripts/given_weights.py"
