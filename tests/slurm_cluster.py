"""A real single-node SLURM cluster for tests (not a test module: pytest collects nothing here).

What it starts lives in one scratch folder: a munge daemon with its own key and socket, and
``slurmctld`` and ``slurmd`` (on free ports) with their state and logs. Their ``slurm.conf`` must
be the default one, ``/etc/slurm/slurm.conf``: inside a job, Snakemake's jobstep executor
calls ``srun`` with every ``SLURM_*`` variable but the job's ids removed, ``SLURM_CONF``
included, so ``srun`` finds only the default file. It is written only where none exists (a
machine with a cluster of its own is left alone) and removed at the end; the daemons are stopped
by their process ids. Needs root (daemons and munge's ownership checks) and SLURM 22.05 or newer;
:func:`unavailable` says why a machine cannot run it, and installs SLURM with apt where it may.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

DAEMONS = ("munged", "mungekey", "slurmctld", "slurmd", "sbatch", "squeue", "sinfo", "scancel")
PARTITION = "main"
CONF = Path("/etc/slurm/slurm.conf")
CLUSTER_NAME = "mmsatest"  # how a config this harness wrote is told from a site's


@dataclass(frozen=True)
class Cluster:
    """A running cluster: its config file and the size of its one node."""

    conf: Path
    cpus: int
    memory_mb: int

    @property
    def env(self) -> dict[str, str]:
        """The environment under which SLURM's clients talk to this cluster."""
        return {**os.environ, "SLURM_CONF": str(self.conf)}


def unavailable() -> str | None:
    """Why this machine cannot start a cluster, or None. As root with apt and no SLURM yet, it
    installs ``slurm-wlm`` and ``munge`` first (what CI does on a fresh machine)."""
    if os.geteuid() != 0:
        return "starting SLURM daemons needs root"
    if CONF.exists():
        if not _leftover(CONF):
            return f"{CONF} exists: this machine has a SLURM cluster of its own"
        CONF.unlink()  # a killed test run's, whose cluster is gone
    missing = [name for name in DAEMONS if shutil.which(name) is None]
    if missing and shutil.which("apt-get"):
        install = ["apt-get", "install", "-y", "-q", "slurm-wlm", "munge"]
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        if subprocess.run(install, capture_output=True, env=env).returncode != 0:
            subprocess.run(["apt-get", "update", "-q"], capture_output=True, env=env)
            subprocess.run(install, capture_output=True, env=env)
        missing = [name for name in DAEMONS if shutil.which(name) is None]
    return f"SLURM or munge is not installed ({', '.join(missing)} missing)" if missing else None


def _leftover(conf: Path) -> bool:
    """A config this harness wrote for a cluster that is gone: a test run killed (SIGKILL, the
    end of a session) before its cleanup left it behind. A live test cluster runs slurmctld."""
    ours = f"ClusterName={CLUSTER_NAME}" in conf.read_text(errors="replace").splitlines()
    running = subprocess.run(["pgrep", "-x", "slurmctld"], capture_output=True).returncode == 0
    return ours and not running


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def node_memory_mb() -> int:
    """90% of the memory available now, so slurmd accepts the node's declared size."""
    with open("/proc/meminfo") as f:
        available_kb = next(int(line.split()[1]) for line in f if line.startswith("MemAvailable:"))
    return int(available_kb / 1024 * 0.9)


def slurm_conf(folder: Path, munge_socket: Path, cpus: int, memory_mb: int) -> str:
    """A one-node, one-partition config without accounting storage or cgroups."""
    host = socket.gethostname().split(".")[0]
    return "\n".join(
        [
            f"ClusterName={CLUSTER_NAME}",
            f"SlurmctldHost={host}",
            f"SlurmctldPort={free_port()}",
            f"SlurmdPort={free_port()}",
            "SlurmUser=root",
            "SlurmdUser=root",
            "AuthType=auth/munge",
            f"AuthInfo=socket={munge_socket}",
            "CredType=cred/munge",
            "MpiDefault=none",
            "ProctrackType=proctrack/linuxproc",
            "TaskPlugin=task/none",
            "SelectType=select/cons_tres",
            "SelectTypeParameters=CR_Core_Memory",
            "AccountingStorageType=accounting_storage/none",
            "JobAcctGatherType=jobacct_gather/none",
            "JobCompType=jobcomp/none",
            "ReturnToService=2",
            "SchedulerType=sched/backfill",
            f"StateSaveLocation={folder / 'state'}",
            f"SlurmdSpoolDir={folder / 'spool'}",
            f"SlurmctldPidFile={folder / 'slurmctld.pid'}",
            f"SlurmdPidFile={folder / 'slurmd.pid'}",
            f"SlurmctldLogFile={folder / 'slurmctld.log'}",
            f"SlurmdLogFile={folder / 'slurmd.log'}",
            f"NodeName={host} CPUs={cpus} RealMemory={memory_mb} State=UNKNOWN",
            f"PartitionName={PARTITION} Nodes={host} Default=YES MaxTime=INFINITE State=UP",
            "",
        ]
    )


@contextmanager
def daemon(cmd: list[str], log: Path, **popen) -> Iterator[subprocess.Popen]:
    """Run a daemon in the foreground for the block's duration; stop it by its process id."""
    with open(log, "ab") as out:
        process = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, **popen)
    try:
        yield process
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def wait_for(ready: Callable[[], bool], what: str, folder: Path, timeout_s: float = 60) -> None:
    """Poll ``ready`` until it holds; on timeout fail with the daemons' logs."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if ready():
            return
        time.sleep(0.5)
    logs = "\n".join(f"{p.name}:\n{p.read_text()[-1500:]}" for p in sorted(folder.glob("*.out")))
    raise RuntimeError(f"no {what} after {timeout_s} s; daemon output:\n{logs}")


def queued(cluster: Cluster) -> list[str]:
    """Ids of the jobs the cluster still has queued or running."""
    run = subprocess.run(["squeue", "-h", "-o", "%i"], capture_output=True, text=True, env=cluster.env)
    return run.stdout.split()


def node_state(cluster: Cluster) -> str:
    run = subprocess.run(["sinfo", "-h", "-o", "%T"], capture_output=True, text=True, env=cluster.env)
    return run.stdout.strip()


@contextmanager
def single_node_cluster(cpus: int | None = None) -> Iterator[Cluster]:
    """Start munge, slurmctld and slurmd in a scratch folder, yield once the node is idle."""
    folder = Path(tempfile.mkdtemp(prefix="mmsa-slurm-"))
    folder.chmod(0o755)  # the munge user reaches its own subfolder through it
    munge = folder / "munge"
    for sub in (folder / "state", folder / "spool"):
        sub.mkdir(mode=0o700)
    munge.mkdir(mode=0o755)  # munged requires its socket's folder to be open to all
    shutil.chown(munge, "munge", "munge")
    key = munge / "munge.key"
    subprocess.run(["mungekey", "--create", "--keyfile", str(key)], check=True, user="munge")
    cpus = cpus or os.cpu_count() or 1
    cluster = Cluster(CONF, cpus, node_memory_mb())
    munged = ["munged", "--foreground", f"--key-file={key}", f"--socket={munge / 'socket'}"]
    munged += [f"--pid-file={munge / 'pid'}", f"--seed-file={munge / 'seed'}", f"--log-file={munge / 'log'}"]
    CONF.parent.mkdir(parents=True, exist_ok=True)
    try:
        CONF.write_text(slurm_conf(folder, munge / "socket", cluster.cpus, cluster.memory_mb))
        with ExitStack() as stack:
            stack.enter_context(daemon(munged, folder / "munged.out", user="munge", group="munge"))
            wait_for(lambda: (munge / "socket").exists(), "munged's socket", folder)
            for name in ("slurmctld", "slurmd"):
                stack.enter_context(daemon([name, "-D", "-f", str(cluster.conf)], folder / f"{name}.out"))
            wait_for(lambda: node_state(cluster) == "idle", "idle SLURM node", folder)
            yield cluster
            # jobs' step daemons outlive slurmd: end them through SLURM before stopping it
            subprocess.run(["scancel", f"--partition={PARTITION}"], env=cluster.env, check=False)
            wait_for(lambda: not queued(cluster), "empty queue", folder)
    finally:
        CONF.unlink(missing_ok=True)
        shutil.rmtree(folder, ignore_errors=True)
