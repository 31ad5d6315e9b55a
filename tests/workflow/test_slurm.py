"""The tiny config through the SLURM profile on a real single-node SLURM cluster.

Every job must go through ``sbatch`` (the short ones in the profile's groups), and
the results must equal a local run's. The cluster
is started here from scratch (tests/slurm_cluster.py); where that cannot be done (not root, no
SLURM and no apt) the test is skipped with the reason.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
import pytest
import yaml

from helpers import REPO, run_snakemake, tiny_workflow_config
from slurm_cluster import PARTITION, Cluster, single_node_cluster, unavailable

pytestmark = pytest.mark.slow

SUBMITTED = re.compile(r"Job (\S+) has been submitted with SLURM jobid (\d+)")  # group jobs: a uuid


@pytest.fixture(scope="module")
def cluster():
    reason = unavailable()
    if reason:
        pytest.skip(reason)
    with single_node_cluster() as running:
        yield running


def site_file(cluster: Cluster, path: Path) -> Path:
    """What a site puts in its site file (profiles/slurm/site.yaml), for this test cluster: no
    account (no accounting storage), its one partition, requests no larger than its one node."""
    site = {
        "default-resources": {"slurm_partition": PARTITION},
        "slurm-no-account": True,
        "slurm-status-command": "squeue",  # sacct needs accounting storage
        "slurm-init-seconds-before-status-checks": 1,  # the plugin adds 10 s per check that finds no job done
        "slurm-keep-successful-logs": True,
        "max-threads": cluster.cpus,
        "cores": cluster.cpus,  # the width of a group job: one node
        "resources": [f"mem_mb={cluster.memory_mb}"],
    }
    path.write_text(yaml.safe_dump(site))
    return path


def compared_results(results: Path) -> dict[str, object]:
    """The deterministic results of a run: row accounting, split tables, the pretraining loss
    log, each finetuning record (less its provenance, which names the host) and the report
    table. Timings (throughput.json, benchmarks) are left out."""
    out: dict[str, object] = {}
    for path in sorted(results.glob("datasets/*/accounting.json")):
        out[str(path.relative_to(results))] = json.loads(path.read_text())
    for path in sorted(results.glob("splits/*.parquet")):
        out[str(path.relative_to(results))] = pd.read_parquet(path).to_dict("list")
    for path in sorted(results.glob("finetune/*/*/seed-*.json")):
        record = json.loads(path.read_text(), parse_constant=str)  # NaN (one-class split) == NaN
        record.pop("provenance")
        out[str(path.relative_to(results))] = record
    for name in ("pretrain/losses.csv", "report/results.csv"):
        out[name] = (results / name).read_text()
    return out


def test_the_slurm_profile_runs_every_job_through_sbatch_with_local_results(
    cluster, tmp_path, download_cache, tiny
):
    """The local run is the shared tiny run; the SLURM run repeats its config with a feature
    cache of its own, so every featurize job computes again on the cluster."""
    local, local_config = tiny
    remote = tmp_path / "slurm"
    remote.mkdir()
    config = yaml.safe_load(local_config.read_text())
    config["cache_dir"] = tiny_workflow_config(remote, download_cache)["cache_dir"]
    remote_config = remote / "config.yaml"
    remote_config.write_text(yaml.safe_dump(config))

    site = site_file(cluster, tmp_path / "site.yaml")
    profiles = ["--profile", str(REPO / "profiles" / "slurm"), "--profile", str(site)]
    run = run_snakemake(remote, remote_config, *profiles, env=cluster.env)
    log = run.stdout + run.stderr
    assert run.returncode == 0, log[-4000:]

    submitted = SUBMITTED.findall(log)
    slurm_logs = sorted((remote / ".snakemake" / "slurm_logs").rglob("*.log"))
    local_jobs = len(re.findall(r"^\s*localrule \w+:", run.stdout + run.stderr, flags=re.M))
    print(f"{len(submitted)} sbatch jobs, {len(slurm_logs)} SLURM logs, {local_jobs} local jobs")
    assert len(submitted) == len(slurm_logs) == len({slurm_id for _, slurm_id in submitted}) > 0
    folders = {p.relative_to(remote / ".snakemake" / "slurm_logs").parts[0] for p in slurm_logs}
    assert {"rule_pretrain", "rule_report"} <= folders
    # the profile's groups: every job of a grouped rule goes to SLURM inside a group job
    profile = yaml.safe_load((REPO / "profiles" / "slurm" / "config.yaml").read_text())
    group_of = dict(entry.split("=") for entry in profile["groups"])  # rule=group
    groups = {f for f in folders if f.startswith("group_")}  # group_<group>_<its rules>
    assert {g.split("_")[1] for g in groups} == set(group_of.values()), folders
    assert not {f"rule_{rule}" for rule in group_of} & folders, folders
    assert "No wall time information given" not in log
    assert compared_results(remote / "results") == compared_results(local / "results")
