"""docs/extending.md's five recipes, applied as written to a copy of the repository.

Each ``<!-- edit: ... -->`` block of the guide is inserted where it says into a copy of the
library; then, in that copy (its own ``mmsa`` first on the path), the toy loss term trains, the
toy compared model finetunes, saves and predicts, the toy setting reaches its jobs and changes
what they train, the toy rule runs in Snakemake after the fetch it needs, and the toy dataset is
fetched, together with the repository's own checks that the config, the schema, the rules'
resources, the scripts' keyword arguments and the layers agree. One pytest run in the copy
serves all five; each
test here reads its own part of that run. The file counts the guide's table promises are the
files its edits touch.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import textwrap
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
GUIDE = REPO / "docs" / "extending.md"
EDIT = re.compile(
    r"<!-- edit: (?P<path>\S+) \| (?P<how>after|before|new)(?::\s*(?P<anchor>.*?))? -->\n"
    r"```\w*\n(?P<code>.*?)```",
    re.S,
)
COPIED = (
    "mmsa",
    "tests",
    "workflow",
    "config",
    "profiles",
    "envs",
    "Snakefile",
    "pyproject.toml",
    "README.md",
)


@dataclass(frozen=True)
class Edit:
    path: str
    how: str  # "after" or "before" the line whose stripped text is ``anchor``, or "new" (a file)
    anchor: str | None
    code: str


def recipes() -> dict[str, list[Edit]]:
    """The guide's edits under each ``## `` heading."""
    sections = re.split(r"^## ", GUIDE.read_text(), flags=re.M)[1:]
    return {
        section.splitlines()[0].strip(): [Edit(**m.groupdict()) for m in EDIT.finditer(section)]
        for section in sections
    }


def apply(root: Path, edit: Edit) -> None:
    path = root / edit.path
    if edit.how == "new":
        assert not path.exists(), f"{edit.path} exists already"
        path.write_text(edit.code)
        return
    lines = path.read_text().splitlines(keepends=True)
    hits = [i for i, line in enumerate(lines) if line.strip() == edit.anchor]
    assert len(hits) == 1, f"{edit.path}: {len(hits)} lines read {edit.anchor!r}"
    at = hits[0] + (1 if edit.how == "after" else 0)
    path.write_text("".join(lines[:at]) + edit.code + "".join(lines[at:]))


TOY_TESTS = {
    # a loss term: the model runs it, sums it, saves its module; the config takes its settings
    "tests/models/test_toy_term.py": """
        import torch

        from helpers import molecule_batch
        from mmsa.models import MMSAModel
        from mmsa.plan.config import validate_config
        from test_mmsa_model import SMALL


        def test_toy_term():
            settings = {"atom_count": True, "weight_atom_count": 0.5}
            validate_config({"pretrain": {"settings": {"model": settings}}})
            torch.manual_seed(0)
            model = MMSAModel({**SMALL, **settings}).train()
            batch = molecule_batch(["aspirin", "caffeine", "nicotine", "dopamine"])
            out = model(batch)
            assert list(out["losses"])[:3] == ["masking", "descriptors", "atom_count"]
            assert out["losses"]["atom_count"] > 0
            terms = [model.config.weight(k) * v.float() for k, v in out["losses"].items()]
            assert torch.allclose(out["loss"], torch.stack(terms).sum())
            out["loss"].backward()
            assert model.atom_count_head.weight.grad is not None
            assert "atom_count_head.weight" in model.state_dict()
            assert MMSAModel(SMALL).atom_count_head is None
        """,
    # a compared model with a new head, and a finetuning setting: through the finetune stage
    "tests/stages/test_toy_model.py": """
        import numpy as np
        import pandas as pd

        from mmsa.models.property import load_property_model
        from mmsa.plan.config_slices import stage_config
        from mmsa.stages.predict import predict_file
        from test_finetune import prepared, run_model  # noqa: F401 (the fixture)


        def test_toy_model(prepared, tmp_path):
            config, tmp, _, _ = prepared
            handed = stage_config(config, "finetune", "toy", "mmsa-fused")["finetune"]["settings"]
            assert "lr" in handed and not {"rf_trees", "structure_dim", "label_space"} & set(handed)
            _, predictions, weights = run_model(prepared, "mmsa-fused", "toy")
            for prediction_path, weight_path in zip(predictions, weights, strict=True):
                model, meta = load_property_model(weight_path)
                assert type(model.structure).__name__ == "FusedContext"
                assert meta["fused_context"] == {"out_dim": 16}
                test = pd.read_parquet(prediction_path).query("part == 'test'")
                pd.DataFrame({"smiles": test["key"]}).to_csv(tmp_path / "t.csv", index=False)
                out = tmp_path / "p.csv"
                predict_file(config, weight_path, tmp_path / "t.csv", "smiles", out, tmp / "model.pt")
                predicted = pd.read_csv(out)["has_n"]
                np.testing.assert_allclose(predicted, test["has_n"], rtol=0, atol=1e-6)


        def test_toy_setting(prepared):
            config = prepared[0]
            def handed(model):
                return stage_config(config, "finetune", "toy", model)["finetune"]["settings"]
            assert handed("no-pretrain")["zero_head"] is False and "zero_head" not in handed("ecfp-rf")
            still = {"lr": 1e-12, "epochs": 1}  # the head stays where it started
            _, zero, _ = run_model(prepared, "no-pretrain", "zero", {**still, "zero_head": True})
            _, drawn, _ = run_model(prepared, "no-pretrain", "drawn", still)
            np.testing.assert_allclose(pd.read_parquet(zero[0])["has_n"], 0.5, atol=1e-6)
            assert pd.read_parquet(drawn[0])["has_n"].std() > 1e-3
        """,
    # the rules: a finetune job of the new model, reading what its declaration says
    "tests/workflow/test_toy_rules.py": """
        import subprocess
        import sys

        import yaml


        def test_toy_rules(repo, tmp_path):
            overlay = tmp_path / "models.yaml"
            overlay.write_text(yaml.safe_dump({"finetune": {"models": ["mmsa-fused"]}}))
            target = "results/finetune/bbbp/mmsa-fused/seed-0.json"
            plan = subprocess.run(
                [sys.executable, "-m", "snakemake", "-n", "--cores", "1", "--configfile",
                 "config/test.yaml", str(overlay), "--directory", str(tmp_path), "-s",
                 str(repo / "Snakefile"), target],
                capture_output=True, text=True, cwd=repo,
            )
            assert plan.returncode == 0, plan.stderr[-3000:]
            jobs = plan.stdout + plan.stderr
            assert "model=mmsa-fused" in jobs and "rule embed:" in jobs and "rule hypergraph:" not in jobs
        """,
    # a rule: Snakemake runs it after the fetch it needs; its table counts every raw row once
    "tests/workflow/test_toy_rule.py": """
        import pandas as pd
        import yaml
        from rdkit import Chem

        from helpers import run_snakemake, tiny_workflow_config


        def test_toy_rule(download_cache, tmp_path):
            config = tmp_path / "config.yaml"
            config.write_text(yaml.safe_dump(tiny_workflow_config(tmp_path, download_cache)))
            run = run_snakemake(tmp_path, config, "results/datasets/bbbp/ring_counts.csv")
            assert run.returncode == 0, run.stderr[-3000:]
            smiles = pd.read_parquet(tmp_path / "results/datasets/bbbp/raw.parquet")["smiles"]
            mols = [Chem.MolFromSmiles(s) if s else None for s in smiles]
            # the SSSR's size is the cycle rank: bonds - atoms + connected parts
            rank = [m.GetNumBonds() - m.GetNumAtoms() + len(Chem.GetMolFrags(m)) if m else -1 for m in mols]
            expected = pd.Series(rank).value_counts()
            counts = pd.read_csv(tmp_path / "results/datasets/bbbp/ring_counts.csv")
            assert dict(zip(counts["rings"], counts["molecules"])) == expected.to_dict()
            assert counts["molecules"].sum() == len(smiles) and len(counts) >= 3
            assert (tmp_path / "results/benchmarks/ring_counts/bbbp.tsv").is_file()
        """,
    # a registry dataset: fetched, checked and read by the registry's code
    "tests/data/test_toy_dataset.py": """
        import pandas as pd

        from mmsa.data.raw_table import fetch_dataset
        from mmsa.data.registry import get_spec
        from mmsa.data.row_limit import RowLimit
        from mmsa.plan.config import validate_config


        def test_toy_dataset(download_cache, tmp_path):
            spec = get_spec("bbbp-copy")
            assert spec.archive_sha256 == get_spec("bbbp").archive_sha256
            validate_config({"finetune": {"datasets": ["bbbp-copy"]}})
            fetch_dataset(spec, tmp_path / "raw.parquet", download_cache, limit=RowLimit("first", 30))
            assert len(pd.read_parquet(tmp_path / "raw.parquet")) == 30
        """,
}
# the repository's own checks that the config, the schema, the compared models and the layers agree
OWN_CHECKS = (
    "tests/plan/test_settings.py",
    "tests/plan/test_config_slices.py",
    "tests/plan/test_config.py::test_schema_default_models_are_the_compared_models_in_table_order",
    "tests/plan/test_job_resources.py::test_every_rule_declares_its_own_measured_resources",
    "tests/workflow/test_workflow_imports.py::test_the_workflow_imports_no_rdkit_or_torch",
    "tests/workflow/test_workflow_imports.py::test_every_workflow_script_hands_its_stage_keyword_arguments",
    "tests/test_layers.py",
)


@pytest.fixture(scope="module")
def extended(tmp_path_factory, download_cache) -> tuple[Path, dict[str, str], str]:
    """The copy with every recipe applied, and the outcome of its pytest run per test id."""
    root = tmp_path_factory.mktemp("extended")
    for name in COPIED:
        source = REPO / name
        if source.is_dir():
            shutil.copytree(source, root / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(source, root / name)
    for edits in recipes().values():
        for edit in edits:
            apply(root, edit)
    for path, code in TOY_TESTS.items():
        (root / path).write_text(textwrap.dedent(code).lstrip())
    report = root / "report.xml"
    env = {**os.environ, "PYTHONPATH": str(root), "MMSA_TEST_CACHE": str(download_cache)}
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"--junitxml={report}"]
        + [*TOY_TESTS, *OWN_CHECKS],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
    )
    outcomes = {}
    for case in ET.parse(report).getroot().iter("testcase"):
        failed = case.find("failure") is not None or case.find("error") is not None
        outcomes[case.get("name")] = "failed" if failed else "passed"
    return root, outcomes, run.stdout[-6000:] + run.stderr[-2000:]


def _passed(extended, *names: str) -> None:
    _, outcomes, log = extended
    for name in names:
        assert outcomes.get(name) == "passed", f"{name}: {outcomes.get(name)}\n{log}"


def _files(title: str) -> set[str]:
    return {edit.path for edit in recipes()[title]}


def test_the_copy_imports_its_own_library(extended):
    root, _, _ = extended
    probe = "import mmsa, sys; sys.stdout.write(mmsa.__file__)"
    env = {**os.environ, "PYTHONPATH": str(root)}
    where = subprocess.run([sys.executable, "-c", probe], cwd=root, env=env, capture_output=True, text=True)
    assert Path(where.stdout).resolve().is_relative_to(root.resolve())
    _, outcomes, log = extended
    assert outcomes and all(v == "passed" for v in outcomes.values()), log


def test_a_loss_term_is_one_class_and_its_two_settings(extended):
    assert _files("A pretraining loss term") == {
        "mmsa/models/objective.py",
        "mmsa/models/mmsa_config.py",
        "mmsa/schemas/config.schema.yaml",
    }
    _passed(extended, "test_toy_term", "test_the_schema_lists_every_model_key_and_the_3d_encoders")


def test_a_compared_model_with_a_new_head_trains_saves_and_predicts(extended):
    assert _files("A compared model with a new head") == {
        "mmsa/plan/compared_models.py",
        "mmsa/models/fused_context.py",
        "mmsa/models/heads.py",
    }
    _passed(
        extended,
        "test_toy_model",
        "test_toy_rules",
        "test_schema_default_models_are_the_compared_models_in_table_order",
    )


def test_a_finetuning_setting_reaches_the_jobs_that_read_it(extended):
    assert _files("A finetuning setting") == {
        "mmsa/plan/finetune_settings.py",
        "mmsa/schemas/config.schema.yaml",
        "mmsa/train/finetune_seeds.py",
    }
    _passed(extended, "test_toy_setting", "test_every_finetune_setting_is_handed_to_a_job_that_reads_it")


def test_a_rule_is_a_rule_file_a_script_a_stage_and_two_lines(extended):
    assert _files("A rule") == {
        "mmsa/stages/ring_counts.py",
        "workflow/scripts/ring_counts.py",
        "workflow/rules/ring_counts.smk",
        "Snakefile",
        "mmsa/plan/job_resources.py",
    }
    _passed(
        extended,
        "test_toy_rule",
        "test_every_rule_declares_its_own_measured_resources",
        "test_every_workflow_script_hands_its_stage_keyword_arguments[ring_counts]",
        "test_the_workflow_imports_no_rdkit_or_torch",
    )


def test_a_registry_dataset_is_one_entry(extended):
    assert _files("A dataset") == {"mmsa/data/registry.py"}
    _passed(extended, "test_toy_dataset")
