"""The Snakefile's process plans jobs only: it must not need RDKit or torch, so that Snakemake
runs (and `snakemake -n`) from an environment with only Snakemake and the config code."""

import json
import re
import subprocess
import sys

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


def test_validating_the_shipped_configs_loads_no_rdkit_or_torch(repo):
    """common.smk validates the config in the Snakefile's process; every check it runs (split
    fractions and compared models included) must stay inside the light modules."""
    code = (
        "import json, sys, yaml\n"
        "from mmsa.plan.config import load_config\n"
        "load_config('config/default.yaml')\n"
        "for extra in ('config/paper.yaml', 'config/test.yaml'):\n"
        "    load_config('config/default.yaml', yaml.safe_load(open(extra)))\n"
        "print(json.dumps(sorted(sys.modules)))"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=repo, check=True)
    loaded = {name.split(".")[0] for name in json.loads(run.stdout)}
    assert "mmsa" in loaded and not loaded & set(HEAVY), sorted(loaded & set(HEAVY))
