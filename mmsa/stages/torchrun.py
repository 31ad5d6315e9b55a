"""Pretraining in several processes: the ``torchrun`` command, and what each of its ranks runs.

With ``pretrain.processes`` N > 1 the pretrain rule's script calls :func:`launch`, which starts
N ranks on this machine::

    python -m torch.distributed.run --standalone --nproc_per_node N \\
        -m mmsa.stages.torchrun CONFIG.json OUT_DIR CHECKPOINT LOG MANIFEST...

and waits for them. Each rank configures torch as the single-process stage does and runs
:func:`mmsa.stages.pretrain`, which joins the group from the variables ``torchrun`` exported.
Rank 0 writes the log file; the other ranks log warnings to stderr only. On several machines,
start the same module with ``torchrun --nnodes ... --rdzv-endpoint ...`` on each.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from mmsa.runtime.io import write_text


def torchrun_command(
    processes: int,
    config_file: str | os.PathLike,
    out_dir: str | os.PathLike,
    checkpoint: str | os.PathLike,
    log_file: str | os.PathLike,
    manifests: Sequence[str | os.PathLike],
) -> list[str]:
    """The command that runs ``processes`` ranks of the pretrain stage on this machine."""
    return [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        f"--nproc_per_node={processes}",
        "-m",
        "mmsa.stages.torchrun",
        *(str(a) for a in (config_file, out_dir, checkpoint, log_file, *manifests)),
    ]


def launch(
    config: dict[str, Any],
    manifests: Sequence[str | os.PathLike],
    out_dir: str | os.PathLike,
    checkpoint: str | os.PathLike,
    log_file: str | os.PathLike,
) -> None:
    """Run the pretrain stage in ``config["pretrain"]["processes"]`` ranks; raise if one fails.

    The config travels as a JSON file next to the checkpoint (the ranks are new interpreters).
    """
    config_file = Path(checkpoint).parent / "launch-config.json"
    config_file.parent.mkdir(parents=True, exist_ok=True)
    write_text(json.dumps(config), config_file)
    command = torchrun_command(
        config["pretrain"]["processes"], config_file, out_dir, checkpoint, log_file, manifests
    )
    subprocess.run(command, check=True)


def run_stage(
    config: dict[str, Any],
    manifests: Sequence[str | os.PathLike],
    out_dir: str | os.PathLike,
    checkpoint: str | os.PathLike,
    log_file: str | os.PathLike,
) -> None:
    """The pretrain stage in this process (a single process, or one ``torchrun`` rank): torch
    configured from the config, rank 0 logging to ``log_file``, the other ranks warnings only."""
    from mmsa.runtime.distributed import env_ranks
    from mmsa.runtime.logs import stage_logging
    from mmsa.runtime.reproducible import configure_torch
    from mmsa.stages.pretrain import pretrain

    configure_torch(config["torch_threads"])
    main = env_ranks().is_main
    with stage_logging(log_file if main else None, logging.INFO if main else logging.WARNING):
        pretrain(config, manifests, out_dir, checkpoint)


def run_rank(argv: Sequence[str]) -> None:
    """One rank: ``CONFIG.json OUT_DIR CHECKPOINT LOG MANIFEST...`` (see the module docstring)."""
    config_file, out_dir, checkpoint, log_file, *manifests = argv
    run_stage(json.loads(Path(config_file).read_text()), manifests, out_dir, checkpoint, log_file)


if __name__ == "__main__":
    run_rank(sys.argv[1:])
