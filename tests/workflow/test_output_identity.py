"""benchmarks/output_identity.py, the check that a refactoring kept every output: each kind of
difference lands in its class, and a changed result fails the command."""

import importlib.util
import json
from pathlib import Path

import pytest


@pytest.fixture(scope="module")
def identity(repo):
    spec = importlib.util.spec_from_file_location(
        "output_identity", repo / "benchmarks" / "output_identity.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _write(root: Path, files: dict[str, bytes]) -> Path:
    for name, data in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    return root


def _record(seed: int, commit: str) -> bytes:
    return json.dumps({"seed": seed, "test": 0.8, "provenance": {"commit": commit}}).encode()


def test_each_difference_is_named_and_only_a_changed_result_fails(identity, tmp_path, capsys):
    same = {"model.pt": b"\x80weights", "logs/a.log": b"started 09:00", "checkpoints/last.pt": b"code 1"}
    before = _write(
        tmp_path / "a", {**same, "seed-0.json": _record(0, "abc1234"), "results.md": b"Commit abc1234; x"}
    )
    after = _write(
        tmp_path / "b",
        {
            **same,
            "seed-0.json": _record(0, "def5678"),
            "results.md": b"Commit None; x",
            "logs/a.log": b"10:00",
        },
    )
    assert identity.compare_folders(before, after) == {
        Path("checkpoints/last.pt"): identity.TIMING,
        Path("logs/a.log"): identity.TIMING,
        Path("model.pt"): identity.SAME,
        Path("results.md"): identity.PROVENANCE,
        Path("seed-0.json"): identity.PROVENANCE,
    }
    assert identity.main([str(before), str(after)]) == 0

    _write(after, {"seed-0.json": _record(1, "def5678"), "new.parquet": b"PAR1"})
    classes = identity.compare_folders(before, after)
    assert classes[Path("seed-0.json")] == identity.DIFFERENT  # a result, not its provenance
    assert classes[Path("new.parquet")] == identity.ONLY
    assert identity.main([str(before), str(after)]) == 1
    out = capsys.readouterr().out
    assert "| seed-0.json | different |" in out and "| new.parquet | only in one |" in out


def test_a_manifest_that_differs_only_in_where_the_cache_holds_a_molecule_is_named_so(identity, tmp_path):
    import pandas as pd

    rows = {"row": [0, 1], "key": ["CCO", "c1ccccc1"], "conf_ok": [True, False], "image_ok": [True, True]}
    for name, packs, status in (("a", ["p1", "p1"], [True, False]), ("b", ["p1", "p2"], [True, False])):
        folder = tmp_path / name / "features" / "bbbp"
        folder.mkdir(parents=True)
        frame = pd.DataFrame({**rows, "pack": packs, "pack_row": [0, 1]}).assign(conf_ok=status)
        frame.to_parquet(folder / "shard-00000.parquet")
    rel = Path("features/bbbp/shard-00000.parquet")
    assert identity.compare_file(rel, tmp_path / "a" / rel, tmp_path / "b" / rel) == identity.LOCATION
    changed = pd.read_parquet(tmp_path / "b" / rel).assign(conf_ok=[True, True])  # a molecule's status
    changed.to_parquet(tmp_path / "b" / rel)
    assert identity.compare_file(rel, tmp_path / "a" / rel, tmp_path / "b" / rel) == identity.DIFFERENT
