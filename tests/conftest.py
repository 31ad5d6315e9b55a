"""Shared fixtures: the repository, a persistent download cache."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def repo() -> Path:
    return REPO


@pytest.fixture(scope="session")
def download_cache() -> Path:
    """A cache folder kept between test runs so registry archives are downloaded once."""
    path = Path(os.environ.get("MMSA_TEST_CACHE", REPO / "resources" / "test-cache"))
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(scope="module")
def single_thread() -> Iterator[None]:
    """Tiny tensors: one intra-op thread is faster and immune to a busy shared CPU."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def tiny(tmp_path_factory, download_cache) -> tuple[Path, Path]:
    """The shared tiny workflow run (tests/tiny_run.py): its folder and its config file. Tests
    that change it restore it (a lost output is rebuilt, a changed setting is only dry-run)."""
    from tiny_run import run_tiny

    return run_tiny(tmp_path_factory.mktemp("workflow"), download_cache)
