"""The finished seeds of a finetune job, kept so that a killed job resumes after its last seed.

One job trains every seed of one (dataset, model) pair: 30 seeds of a study are an hour on two
cores. Snakemake removes a killed job's outputs before it runs the job again, so without a copy
an interrupted job (a kill, a lost node, the end of a session) started again from its first
seed. Each seed's outputs are therefore also copied into the job's checkpoint folder as soon as
they are written, beside a digest of everything the seed's bytes depend on: the job's config,
the contents of its input files, the package's code, torch's thread count and CPU kernels. A
rerun with the same digest copies those files back instead of training the seed again; a seed
does not depend on the seeds before it (each reseeds from its own number), so the outputs are
the bytes an uninterrupted job writes. The folder is removed once every seed's outputs are in
place, and kept while one is missing.
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from mmsa.runtime.hashing import code_digest, settings_digest, sha256_file
from mmsa.runtime.io import atomic_path

log = logging.getLogger(__name__)

DIGEST_FILE = "digest"


def seeds_folder(results: Sequence[str | os.PathLike]) -> Path:
    """A job's kept seeds: ``checkpoints/`` beside its per-seed results (found from the outputs,
    which a study's module prefixes; a rule param would not be)."""
    return Path(results[0]).parent / "checkpoints"


def job_digest(config: dict[str, Any], job: str, inputs: Sequence[str | os.PathLike | None]) -> str:
    """What a finetune job's seeds depend on: ``config`` (the job's slice), the job's name, the
    bytes of every input file (a folder: every file in it) and the code and kernels that run."""
    import torch

    from mmsa.runtime.kernels import kernel_provenance

    files: dict[str, str] = {}
    for given in inputs:
        if given is None:
            continue
        path = Path(given)
        for file in sorted(path.rglob("*")) if path.is_dir() else [path]:
            if file.is_file():
                files[str(file)] = sha256_file(file)
    return settings_digest(
        {
            "config": config,
            "job": job,
            "files": files,
            "code": code_digest(),
            "torch_threads": torch.get_num_threads(),
            "cpu_kernels": kernel_provenance(),
        }
    )


class FinishedSeeds:
    """The kept outputs of a job's finished seeds in ``folder`` (nothing kept when ``None``)."""

    def __init__(self, folder: str | os.PathLike | None, digest: str) -> None:
        self.folder = None if folder is None else Path(folder)
        self.digest = digest

    def reuse(self, seed: int, outputs: Sequence[str | os.PathLike]) -> bool:
        """Copy ``seed``'s kept files to ``outputs`` if they were kept under this job's digest."""
        if self.folder is None:
            return False
        kept = self.folder / f"seed-{seed}"
        digest = kept / DIGEST_FILE
        sources = [kept / Path(out).name for out in outputs]
        if not digest.is_file() or digest.read_text() != self.digest or not all(s.is_file() for s in sources):
            return False
        for source, out in zip(sources, outputs, strict=True):
            with atomic_path(out) as tmp:
                shutil.copyfile(source, tmp)
        log.info("seed %d: its outputs were kept by an interrupted run of this job; reused", seed)
        return True

    def keep(self, seed: int, outputs: Sequence[str | os.PathLike]) -> None:
        """Copy ``seed``'s written ``outputs`` into the folder, whole or not at all."""
        if self.folder is None:
            return
        self.folder.mkdir(parents=True, exist_ok=True)
        with atomic_path(self.folder / f"seed-{seed}") as tmp:
            tmp.mkdir()
            for out in outputs:
                shutil.copyfile(out, tmp / Path(out).name)
            (tmp / DIGEST_FILE).write_text(self.digest)

    def clear(self, outputs: Sequence[str | os.PathLike]) -> None:
        """Remove the folder once every one of the job's ``outputs`` is in place. One that has
        gone while the job ran (a second Snakemake on the same folder, cleaning up after its own
        failed run of this job, removes every output of it) leaves the kept seeds the only copy:
        they stay, and the job fails, so that its rerun copies them back instead of training."""
        if self.folder is None:
            return
        missing = [str(out) for out in outputs if not Path(out).is_file()]
        if missing:
            raise RuntimeError(
                f"{len(missing)} outputs of this job were removed while it ran (first: {missing[0]}), "
                f"by another process; its finished seeds stay in {self.folder} for the rerun"
            )
        shutil.rmtree(self.folder, ignore_errors=True)
