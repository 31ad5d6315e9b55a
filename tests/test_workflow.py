"""Real Snakemake runs of the whole workflow on a tiny configuration."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow


def snakemake(workdir: Path, config: Path, *extra: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"),
           "--directory", str(workdir), "--configfile", str(config), "--cores", "2", *extra]
    return subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})


@pytest.fixture(scope="module")
def tiny(tmp_path_factory, download_cache, moleculenet_dir):
    """A tiny config over real data: ZINC, BBBP (PyPI archives) and Tox21 (local folder)."""
    work = tmp_path_factory.mktemp("workflow")
    config = yaml.safe_load((REPO / "config" / "test.yaml").read_text())
    config["cache_dir"] = str(work / "cache")
    config["data"]["local_dir"] = str(moleculenet_dir)
    config["data"]["max_rows"] = {"zinc": 40, "bbbp": 30, "tox21": 30}
    config["data"]["shard_size"] = 20
    (work / "cache" / "downloads").mkdir(parents=True)
    # downloads are shared with other tests; features start empty
    (work / "cache" / "downloads" / "pypi").symlink_to(download_cache / "downloads" / "pypi",
                                                       target_is_directory=True)
    (download_cache / "downloads" / "pypi").mkdir(parents=True, exist_ok=True)
    path = work / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    run = snakemake(work, path)
    assert run.returncode == 0, run.stderr[-4000:]
    return work, path


def test_workflow_accounts_for_every_row(tiny):
    work, _ = tiny
    for name, rows in [("zinc", 40), ("bbbp", 30), ("tox21", 30)]:
        summary = json.loads((work / "results" / "datasets" / name / "accounting.json").read_text())
        assert summary["rows_in"] == rows
        assert summary["featurized"] + summary["rejected"] == rows
        assert (work / "results" / "logs" / "fetch" / f"{name}.log").stat().st_size > 0
    assert len(list((work / "results" / "datasets" / "zinc" / "shards").glob("shard-*.parquet"))) == 2


def test_second_invocation_has_nothing_to_do(tiny):
    work, config = tiny
    run = snakemake(work, config, "--dry-run")
    assert run.returncode == 0
    assert "Nothing to be done" in run.stdout + run.stderr


def test_a_lost_output_is_rebuilt_alone_from_the_cache(tiny):
    work, config = tiny
    lost = work / "results" / "features" / "bbbp" / "shard-00001.parquet"
    lost.unlink()
    (work / "results" / "datasets" / "bbbp" / "accounting.json").unlink()
    run = snakemake(work, config)
    assert run.returncode == 0, run.stderr[-3000:]
    log = run.stdout + run.stderr
    assert log.count("rule featurize:") == 1 and log.count("rule account:") == 1
    assert lost.exists()
    featurize_log = (work / "results" / "logs" / "featurize" / "bbbp-00001.log").read_text()
    assert "to compute" in featurize_log and ", 0 to compute" in featurize_log


def test_invalid_config_stops_before_any_job(tiny, tmp_path):
    work, _ = tiny
    bad = tmp_path / "bad.yaml"
    bad.write_text("featurize:\n  image_size: 4\n")
    run = snakemake(tmp_path, bad, "--dry-run")
    assert run.returncode != 0
    assert "featurize.image_size" in run.stderr + run.stdout
