"""Shared fixtures: the repository, the local data folder, a persistent download cache."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SHARED_MOLECULENET = REPO.parent / "shared" / "data" / "moleculenet"


@pytest.fixture(scope="session")
def repo() -> Path:
    return REPO


@pytest.fixture(scope="session")
def moleculenet_dir() -> Path:
    """The local MoleculeNet folder (Tox21) that CI provides beside the checkout."""
    if not (SHARED_MOLECULENET / "tox21.csv").exists():
        pytest.skip(f"local MoleculeNet folder {SHARED_MOLECULENET} not present")
    return SHARED_MOLECULENET


@pytest.fixture(scope="session")
def download_cache() -> Path:
    """A cache folder kept between test runs so registry archives are downloaded once."""
    path = Path(os.environ.get("MMSA_TEST_CACHE", REPO / "resources" / "test-cache"))
    path.mkdir(parents=True, exist_ok=True)
    return path
