"""The Snakefile's process plans jobs only: it must not need RDKit or torch, so that Snakemake
runs (and `snakemake -n`) from an environment with only Snakemake and the config code."""

import ast
import json
import re
import subprocess
import sys

import pytest

from helpers import REPO

HEAVY = ("rdkit", "torch")


def modules_the_workflow_imports(repo) -> list[str]:
    """Every ``mmsa`` module a workflow file imports in the Snakefile's process."""
    files = [repo / "Snakefile", *sorted((repo / "workflow" / "rules").glob("*.smk"))]
    text = "\n".join(f.read_text() for f in files)
    return sorted(set(re.findall(r"^\s*(?:from|import) (mmsa[\w.]*)", text, flags=re.MULTILINE)))


def test_the_workflow_imports_no_rdkit_or_torch(repo):
    modules = modules_the_workflow_imports(repo)
    assert "mmsa.plan.datasets" in modules and "mmsa.plan.config" in modules
    # a fresh interpreter: this one has loaded both already
    code = f"import json, sys\nfor m in {modules!r}: __import__(m)\nprint(json.dumps(sorted(sys.modules)))"
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=repo, check=True)
    loaded = {name.split(".")[0] for name in json.loads(run.stdout)}
    assert "mmsa" in loaded and not loaded & set(HEAVY), sorted(loaded & set(HEAVY))


SHIPPED_CONFIGS = sorted(p.name for p in (REPO / "config").glob("*.yaml"))


def test_every_shipped_config_is_checked_here():
    assert {"default.yaml", "paper.yaml", "test.yaml"} <= set(SHIPPED_CONFIGS)


@pytest.mark.parametrize("name", SHIPPED_CONFIGS)
def test_validating_a_shipped_config_loads_no_rdkit_or_torch(repo, name):
    """common.smk validates the config in the Snakefile's process; every check it runs (split
    fractions and compared models included) must stay inside the light modules. Each file is
    validated alone, as Snakemake reads it (no file is merged onto another), in a fresh interpreter."""
    code = (
        "import json, sys\n"
        "from mmsa.plan.config import load_config\n"
        f"config = load_config('config/{name}')\n"
        "print(json.dumps({'datasets': config['finetune']['datasets'], 'modules': sorted(sys.modules)}))"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=repo)
    assert run.returncode == 0, run.stderr[-2000:]
    printed = json.loads(run.stdout)
    loaded = {name.split(".")[0] for name in printed["modules"]}
    print(
        f"config/{name}: valid, {len(printed['datasets'])} finetuning datasets; heavy modules loaded:",
        sorted(loaded & set(HEAVY)) or "none",
    )
    assert "mmsa" in loaded and not loaded & set(HEAVY), sorted(loaded & set(HEAVY))


STAGE_MODULES = ("mmsa.stages", "mmsa.data.coverage")  # the coverage rule's work is a data function


def stage_calls(script) -> list[ast.Call]:
    """The calls of the functions a workflow script imports from mmsa (its stage)."""
    tree = ast.parse(script.read_text())
    imported = {
        alias.asname or alias.name
        for node in tree.body
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith(STAGE_MODULES)
        for alias in node.names
    }
    return [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id in imported | {"start"}
    ]


SCRIPTS = sorted((REPO / "workflow" / "scripts").glob("*.py"))


@pytest.mark.parametrize("script", SCRIPTS, ids=[s.stem for s in SCRIPTS])
def test_every_workflow_script_hands_its_stage_keyword_arguments(script):
    """A reordered stage signature must not silently swap files (report took seven positionally)."""
    calls = stage_calls(script)
    assert calls, f"{script.name} calls no stage"
    for call in calls:
        assert call.args == [], f"{script.name}: {ast.unparse(call)[:80]} passes arguments by position"


def test_snakemake_lint_finds_nothing(repo):
    """The workflow follows Snakemake's own style checks (rules thin, functions in common.smk)."""
    run = subprocess.run(
        [sys.executable, "-m", "snakemake", "--lint"], capture_output=True, text=True, cwd=repo, timeout=300
    )
    assert run.returncode == 0, (run.stdout + run.stderr)[-3000:]
