"""Pretraining on two CPU processes (``torchrun``, gloo) against one process with the same batches.

Two ranks with ``batch_size`` 8 train on slices of 4 molecules of the global batches of 8 that
one process trains on, gather them for the terms that compare molecules and normalize over the
global batch, so the loss curves agree step by step up to float32 rounding: the batch norm
statistics are summed per rank and then over the ranks (not in one pass), and DDP averages the
two ranks' gradients instead of taking one backward pass. Measured: 5e-7 at the first step
(before any update), 4.2e-4 at most over the 12 steps, as the rounding grows through the
updates. FIRST_STEP_TOLERANCE and LOSS_TOLERANCE leave some room above that and stay far below
the loss's change between steps (2e-2 or more), which per-rank negatives, per-rank batch norm
statistics or a different partition of the batch would show from the first step on. Fusion
dropout stays on (TINY_MODEL): the global part of a step draws the same random numbers as one
process does.
"""

from __future__ import annotations

import contextlib
import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import psutil
import pytest
import torch

from helpers import TINY_MODEL, TOY_SMILES, run_chain, toy_config
from mmsa.plan.config import deep_merge, validate_config
from mmsa.stages.pretrain import pretrain
from mmsa.stages.torchrun import torchrun_command

pytestmark = pytest.mark.slow

FIRST_STEP_TOLERANCE = 1e-5
LOSS_TOLERANCE = 2e-3
KILL_TRIES = 3  # a busy machine can starve this process past the run's end; then run it again
SETTINGS = {"epochs": 3, "batch_size": 8, "lr": 3e-3, "device": "cpu", "model": TINY_MODEL}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("ddp")
    (tmp / "toy.csv").write_text("smiles,y\n" + "".join(f"{s},0\n" for s in TOY_SMILES))
    base = toy_config(tmp, ["toy"], {"y": "y"}, shard_size=12)
    config = validate_config(deep_merge(base, {"torch_threads": 1, "pretrain": {"settings": SETTINGS}}))
    run_chain(config, "toy", tmp / "out")
    manifests = sorted(str(p) for p in (tmp / "out" / "toy").glob("man-*.parquet"))
    (tmp / "config.json").write_text(json.dumps(config))
    return config, manifests, tmp


def start_two_ranks(corpus, name: str) -> subprocess.Popen:
    _, manifests, tmp = corpus
    out = tmp / name
    command = torchrun_command(2, tmp / "config.json", out, out / "ckpt.pt", out / "log.txt", manifests)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path), "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(command, env=env, stderr=subprocess.PIPE, text=True)


def finish(process: subprocess.Popen) -> None:
    _, err = process.communicate(timeout=600)
    assert process.returncode == 0, err[-3000:]


def kill_tree(pid: int) -> None:
    """SIGKILL a process and all its descendants at once, as a job scheduler kills a job
    (``torchrun`` starts each rank in a session of its own, so its process group misses them).

    The descendants are read from /proc (psutil), not found by starting ``pgrep`` once per
    process: on a busy machine those starts took longer than the run's last two epochs, and the
    run finished before it was killed."""
    root = psutil.Process(pid)
    for process in [root, *root.children(recursive=True)]:
        with contextlib.suppress(psutil.NoSuchProcess):
            process.send_signal(signal.SIGKILL)


def losses(folder) -> list[float]:
    with open(folder / "losses.csv") as fh:
        return [float(row["loss"]) for row in csv.DictReader(fh)]


def weights(folder) -> dict[str, torch.Tensor]:
    return torch.load(folder / "model.pt", weights_only=True)["state_dict"]


@pytest.fixture(scope="module")
def one_process(corpus, single_thread):
    config, manifests, tmp = corpus
    pretrain(config, manifests, tmp / "one", tmp / "one" / "ckpt.pt")
    return tmp / "one"


def test_two_ranks_follow_the_loss_curve_of_one_process_with_the_same_global_batch(corpus, one_process):
    _, _, tmp = corpus
    finish(start_two_ranks(corpus, "two"))
    single, double = losses(one_process), losses(tmp / "two")
    assert len(single) == len(double) == 3 * 4  # 32 molecules: 4 global batches of 8 per epoch
    diff = max(abs(a - b) for a, b in zip(single, double, strict=True))
    print(f"loss 1 process: {single}\nloss 2 ranks:   {double}\nmax abs diff {diff:.3g}")
    assert abs(single[0] - double[0]) < FIRST_STEP_TOLERANCE and diff < LOSS_TOLERANCE
    assert single[0] != single[-1]  # it trained
    throughput = json.loads((tmp / "two" / "throughput.json").read_text())
    assert throughput["molecules"] == 3 * 32  # each rank counts the global batch
    a, b = weights(one_process), weights(tmp / "two")
    assert a.keys() == b.keys()  # the batch norms save under their usual names


def test_a_killed_two_rank_run_resumes_to_the_uninterrupted_result(corpus):
    _, _, tmp = corpus
    if not (tmp / "two" / "model.pt").exists():
        finish(start_two_ranks(corpus, "two"))
    checkpoint = tmp / "cut" / "ckpt.pt"
    for _ in range(KILL_TRIES):  # the kill must land in the last epochs' second or so
        shutil.rmtree(tmp / "cut", ignore_errors=True)
        run = start_two_ranks(corpus, "cut")
        while not checkpoint.exists() and run.poll() is None:
            time.sleep(0.02)
        kill_tree(run.pid)
        run.communicate()
        if not (tmp / "cut" / "model.pt").exists():
            break
    else:
        pytest.fail(f"the run finished before it was killed, {KILL_TRIES} times")
    epoch = torch.load(checkpoint, weights_only=True)["epoch"]
    assert 1 <= epoch < 3
    finish(start_two_ranks(corpus, "cut"))
    assert "resuming from" in (tmp / "cut" / "log.txt").read_text()
    assert losses(tmp / "cut") == losses(tmp / "two")
    a, b = weights(tmp / "two"), weights(tmp / "cut")
    assert all(torch.equal(a[k], b[k]) for k in a)
