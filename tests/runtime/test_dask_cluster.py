"""The data stages on a real Dask cluster (``dask.scheduler_address``) write the same bytes.

A ``dask scheduler`` and two single-threaded ``dask worker`` processes run on localhost, as a
cluster from dask-jobqueue would elsewhere; the workers import this checkout's mmsa through the
inherited PYTHONPATH. The same small dataset goes through standardize -> shard -> featurize once
on local processes and once through the cluster, into separate feature caches, which must hold
byte-identical files; the scheduler's task stream shows that the cluster's workers did the
featurization.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import dask
import pandas as pd
import pytest

from helpers import run_chain
from mmsa.plan.config import validate_config
from mmsa.plan.config_slices import placement, stage_config
from mmsa.runtime.parallel import compute, dask_workers

# 30 small drug-like molecules: quick conformers, a few of each kind of ring and charge.
MOLECULES = """
CCO CC(=O)O c1ccccc1 CC(=O)Oc1ccccc1C(=O)O CN1C=NC2=C1C(=O)N(C(=O)N2C)C
CC(C)Cc1ccc(cc1)C(C)C(=O)O c1ccc2ccccc2c1 OC1CCCCC1 CCN(CC)CC NC(=O)c1ccccc1 Oc1ccccc1
CC(C)O C1CCNCC1 c1ccncc1 COc1ccccc1 CC(=O)Nc1ccc(O)cc1 OC(=O)c1ccccc1O C1=CC=CN=C1N
CCCCCCO ClCCl FC(F)(F)c1ccccc1 CC#N O=C1CCCCC1 c1ccc(cc1)C(=O)c1ccccc1 CS(=O)(=O)N
NCCc1ccc(O)c(O)c1 CCOC(=O)C c1cc[nH]c1 OCC(O)CO CC(C)(C)c1ccccc1
"""
SMILES = MOLECULES.split()
DATASET = "mols"
CHUNK = 2  # molecules per task: enough tasks to reach both workers


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def dask_command() -> str:
    """The ``dask`` console script of this interpreter's environment (skip if there is none)."""
    beside = Path(sys.executable).parent / "dask"
    found = str(beside) if beside.exists() else shutil.which("dask")
    if not found:
        pytest.skip("no `dask` command (dask.distributed's console script) to start a cluster with")
    return found


def stop(process: subprocess.Popen) -> None:
    """End a process this test started, and its children (a worker's nanny starts one)."""
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)  # its own session: only what it started
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=30)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The address of a localhost scheduler with two 1-thread worker processes; torn down after."""
    distributed = pytest.importorskip("distributed", reason="dask.distributed is not installed")
    command = dask_command()
    logs = tmp_path_factory.mktemp("cluster-logs")
    address = f"tcp://127.0.0.1:{free_port()}"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}  # PYTHONPATH inherited: workers import this mmsa
    started: list[subprocess.Popen] = []

    def start(name: str, *args: str) -> None:
        with open(logs / f"{name}.log", "wb") as out:
            started.append(
                subprocess.Popen(
                    [command, *args], stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True
                )
            )

    try:
        start("scheduler", "scheduler", "--host", "127.0.0.1", "--port", address.rsplit(":", 1)[1],
              "--no-dashboard")  # fmt: skip
        for i in range(2):
            start(f"worker-{i}", "worker", address, "--nworkers", "1", "--nthreads", "1",
                  "--name", f"w{i}", "--no-dashboard")  # fmt: skip
        with distributed.Client(address, timeout=120, set_as_default=False) as client:
            client.wait_for_workers(2, timeout=180)
        yield address
    except (OSError, TimeoutError) as err:
        tails = {p.name: p.read_text()[-1500:] for p in sorted(logs.glob("*.log"))}
        pytest.fail(f"the local Dask cluster did not come up: {err!r}\n{tails}")
    finally:
        for process in reversed(started):  # workers first, then the scheduler
            stop(process)


def write_dataset(folder: Path) -> None:
    labels = [i % 2 for i in range(len(SMILES))]
    pd.DataFrame({"smiles": SMILES, "y": labels}).to_csv(folder / f"{DATASET}.csv", index=False)


def config_for(folder: Path, cache: Path, scheduler_address: str | None) -> dict:
    return validate_config(
        {
            "cache_dir": str(cache),
            "data": {
                "local_dir": str(folder),
                "custom": {
                    DATASET: {
                        "source": "local",
                        "smiles_column": "smiles",
                        "task_type": "classification",
                        "tasks": {"y": "y"},
                    }
                },
                "shards": {DATASET: 2},  # two featurize calls, two packs
            },
            # a generous conformer timeout: a busy CPU must not make one run give up on a molecule
            "featurize": {"image_size": 32, "chunk_size": CHUNK, "conformer": {"timeout_s": 120}},
            "finetune": {"datasets": [DATASET]},
            "dask": {"scheduler_address": scheduler_address},
        }
    )


def digests(root: Path) -> dict[str, tuple[int, str]]:
    """Every file under ``root``: relative path -> (size, sha256)."""
    return {
        str(p.relative_to(root)): (p.stat().st_size, hashlib.sha256(p.read_bytes()).hexdigest())
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_the_address_is_handed_to_the_data_stages_but_declared_by_none(tmp_path: Path) -> None:
    """Moving jobs onto a cluster changes where they run, not what they write: no rule's
    declared config (a Snakemake rerun trigger) may change with the address."""
    local = config_for(tmp_path, tmp_path / "cache", None)
    remote = config_for(tmp_path, tmp_path / "cache", "tcp://10.0.0.5:8786")
    for stage in ("standardize", "shard", "featurize"):
        assert placement(remote, stage) == {"scheduler_address": "tcp://10.0.0.5:8786"}
        assert placement(local, stage) == {"scheduler_address": None}
        assert stage_config(remote, stage, DATASET) == stage_config(local, stage, DATASET)
    assert placement(remote, "pretrain") == {}  # no Dask tasks there
    assert placement({}, "featurize") == {"scheduler_address": None}  # an unvalidated config


def test_without_an_address_tasks_run_on_local_processes() -> None:
    with dask_workers(1) as slots:
        assert slots == 1
    with dask_workers(2) as slots:
        assert slots == 2
    assert compute([dask.delayed(pow)(2, n) for n in range(4)], 1, None) == [1, 2, 4, 8]


@pytest.mark.slow
def test_a_cluster_featurizes_the_same_bytes_as_local_processes(cluster: str, tmp_path: Path) -> None:
    import distributed

    write_dataset(tmp_path)

    start = time.perf_counter()
    local = run_chain(config_for(tmp_path, tmp_path / "cache-a", None), DATASET, tmp_path / "local")
    local_s = time.perf_counter() - start

    with distributed.Client(cluster, set_as_default=False) as client:
        start = time.perf_counter()
        with distributed.get_task_stream(client) as stream:
            remote = run_chain(
                config_for(tmp_path, tmp_path / "cache-b", cluster), DATASET, tmp_path / "cluster"
            )
        cluster_s = time.perf_counter() - start
        names = {w["name"] for w in client.scheduler_info()["workers"].values()}

    assert local == remote and local["featurized"] == len(SMILES)
    a, b = digests(tmp_path / "cache-a"), digests(tmp_path / "cache-b")
    assert a and a == b  # same relative paths, sizes and sha256
    for s in range(len(local["featurize"])):
        manifest = f"man-{s}.parquet"
        pd.testing.assert_frame_equal(
            pd.read_parquet(tmp_path / "local" / DATASET / manifest),
            pd.read_parquet(tmp_path / "cluster" / DATASET / manifest),
        )

    # the cluster did the work: every chunk, and the standardize/shard tasks, on its workers
    done = [t for t in stream.data if t["status"] == "OK"]
    chunks = [t for t in done if str(t["key"]).startswith("featurize_chunk")]
    computed = sum(c["computed"] for c in remote["featurize"])
    assert len(chunks) == sum(-(-c["computed"] // CHUNK) for c in remote["featurize"])
    workers = {t["worker"] for t in chunks}
    assert len(workers) == 2, workers  # both single-threaded workers took chunks
    assert any("standardize_row_group" in str(t["key"]) for t in done)
    assert any("gather_shard" in str(t["key"]) for t in done)
    print(
        f"\nbyte-identical feature caches: {len(a)} files, {sum(size for size, _ in a.values())} bytes; "
        f"{computed} molecules in {len(chunks)} chunk tasks on workers {sorted(names)}; "
        f"local {local_s:.1f} s, cluster {cluster_s:.1f} s"
    )
