import subprocess
import sys

import pytest

from mmsa.hashing import settings_digest, shard_of, stable_int
from mmsa.io import atomic_path


def test_stable_int_is_the_same_in_another_process():
    here = stable_int("CCO")
    code = "from mmsa.hashing import stable_int; print(stable_int('CCO'))"
    there = int(subprocess.check_output([sys.executable, "-c", code], text=True))
    assert here == there


def test_shard_of_is_in_range_and_spreads():
    keys = [f"C{'C' * i}O" for i in range(400)]
    shards = [shard_of(k, 4) for k in keys]
    assert set(shards) == {0, 1, 2, 3}
    assert max(shards.count(s) for s in range(4)) < 150


def test_settings_digest_ignores_key_order():
    assert settings_digest({"a": 1, "b": [1, 2]}) == settings_digest({"b": [1, 2], "a": 1})
    assert settings_digest({"a": 1}) != settings_digest({"a": 2})


def test_atomic_path_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("killed")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]


def test_atomic_path_replaces_directories(tmp_path):
    target = tmp_path / "store"
    for content in ("first", "second"):
        with atomic_path(target) as tmp:
            tmp.mkdir()
            (tmp / "f").write_text(content)
    assert (target / "f").read_text() == "second"


def test_atomic_path_keeps_existing_when_not_overwriting(tmp_path):
    target = tmp_path / "pack"
    target.mkdir()
    (target / "f").write_text("first")
    with atomic_path(target, overwrite=False) as tmp:
        tmp.mkdir()
        (tmp / "f").write_text("second")
    assert (target / "f").read_text() == "first"
    assert [p.name for p in tmp_path.iterdir()] == ["pack"]


REPLACE_FOLDER = """
import sys
from pathlib import Path
from mmsa.io import atomic_path

final = Path(sys.argv[1])
with atomic_path(final) as tmp:
    tmp.mkdir()
    (tmp / "new").write_text("new")
    print("replacing", flush=True)
"""


def test_killed_folder_replacement_never_leaves_a_half_deleted_folder(tmp_path):
    """SIGKILL while an old output folder is being replaced: the final name holds the old folder
    whole, the new one, or nothing; never part of the old one."""
    import os
    import signal
    import time

    final, n = tmp_path / "shards", 20_000
    final.mkdir()
    for i in range(n):
        (final / f"old-{i}").touch()
    process = subprocess.Popen(
        [sys.executable, "-c", REPLACE_FOLDER, str(final)], stdout=subprocess.PIPE, text=True
    )
    assert process.stdout.readline().strip() == "replacing"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:  # kill as soon as the old folder starts to change
        try:
            names = os.listdir(final)
        except FileNotFoundError:
            break
        if len(names) != n:
            break
    process.send_signal(signal.SIGKILL)
    process.wait()
    names = set(os.listdir(final)) if final.exists() else set()
    assert names in ({f"old-{i}" for i in range(n)}, {"new"}, set()), f"{len(names)} entries"
