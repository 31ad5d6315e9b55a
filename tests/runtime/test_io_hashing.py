import multiprocessing
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mmsa.runtime.hashing import settings_digest, shard_of, stable_int
from mmsa.runtime.io import atomic_path


def test_stable_int_is_the_same_in_another_process():
    here = stable_int("CCO")
    code = "from mmsa.runtime.hashing import stable_int; print(stable_int('CCO'))"
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


ROUNDS, WRITERS, FILES = 40, 4, 20


def _files(entry: Path) -> dict[str, str]:
    return {p.name: p.read_text() for p in entry.iterdir()}


def _expected() -> dict[str, str]:
    return {f"f{i}": f"{i}\n" * 500 for i in range(FILES)}


def _publish_rounds(root: str, barrier, errors) -> None:
    """Each round, all writers publish the same entry at the same moment, then use it."""
    for r in range(ROUNDS):
        try:
            with atomic_path(Path(root) / f"entry-{r}", overwrite=False) as tmp:
                tmp.mkdir()
                for name, text in _expected().items():
                    (tmp / name).write_text(text)
                barrier.wait(timeout=60)
            if _files(Path(root) / f"entry-{r}") != _expected():
                errors.put(f"round {r}: the published entry is incomplete after publishing")
        except Exception as err:  # recorded, so that the other writers are not left at the barrier
            errors.put(f"round {r}: writer: {err!r}")


def _read_entries(root: str, done, errors) -> None:
    """Read every published entry over and over until the writers are done (or 20 failures:
    a queue's unread items would keep the process from exiting)."""
    failures = 0
    while not done.is_set() and failures < 20:
        for entry in Path(root).glob("entry-*"):
            try:
                if _files(entry) != _expected():
                    errors.put(f"{entry.name}: reader saw an incomplete entry")
                    failures += 1
            except OSError as err:
                errors.put(f"{entry.name}: reader: {err!r}")
                failures += 1


def _drain(errors) -> list[str]:
    found = []
    while not errors.empty():
        found.append(errors.get())
    return found


def test_publish_once_is_safe_for_concurrent_writers_and_readers(tmp_path):
    """Content-addressed entries (shared downloads, feature packs) that several processes
    publish at once: one copy wins, the others use it, and no reader ever loses a file."""
    ctx = multiprocessing.get_context("spawn")
    barrier, done, errors = ctx.Barrier(WRITERS), ctx.Event(), ctx.Queue()
    reader = ctx.Process(target=_read_entries, args=(str(tmp_path), done, errors))
    writers = [
        ctx.Process(target=_publish_rounds, args=(str(tmp_path), barrier, errors)) for _ in range(WRITERS)
    ]
    reader.start()
    for w in writers:
        w.start()
    for w in writers:
        w.join(timeout=300)
    done.set()
    reader.join(timeout=60)
    found = _drain(errors)
    assert not found, f"{len(found)} failures, e.g. {found[:5]}"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(f"entry-{r}" for r in range(ROUNDS))


def _replace_folder(target: str, ready) -> None:
    """Write a new version of the folder; say so just before the block ends and it is published."""
    with atomic_path(target) as tmp:
        tmp.mkdir()
        for i in range(1000):
            (tmp / f"f{i}").write_text("x")
        ready.set()


def test_a_killed_folder_replacement_never_leaves_a_half_deleted_folder(tmp_path):
    """A rule's output folder is being replaced when the job is killed (SIGKILL, a few ms into
    the replacement): the final name then holds a complete folder or nothing, never a folder
    with files missing."""
    ctx = multiprocessing.get_context("spawn")
    target = tmp_path / "store"
    partial = []
    for delay_ms in (0, 2, 5, 10, 15, 20):
        if not target.exists():
            _replace_folder(str(target), ctx.Event())
        ready = ctx.Event()
        writer = ctx.Process(target=_replace_folder, args=(str(target), ready))
        writer.start()
        assert ready.wait(timeout=120)
        time.sleep(delay_ms / 1000)
        os.kill(writer.pid, signal.SIGKILL)
        writer.join()
        if target.exists() and len(os.listdir(target)) != 1000:
            partial.append(len(os.listdir(target)))
            shutil.rmtree(target)
    assert not partial, f"killed jobs left folders with {partial} of 1000 files"


def test_the_code_digest_covers_every_module_of_the_package(repo, tmp_path):
    """A checkpoint records it so that training never resumes under other code: an edit to a
    model module, far from the runtime package, must change it."""
    shutil.copytree(repo / "mmsa", tmp_path / "mmsa", ignore=shutil.ignore_patterns("__pycache__"))
    probe = "import sys; from mmsa.runtime.hashing import code_digest; sys.stdout.write(code_digest())"
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}

    def digest() -> str:
        run = subprocess.run(
            [sys.executable, "-c", probe], cwd=tmp_path, env=env, capture_output=True, text=True
        )
        return run.stdout

    before = digest()
    with open(tmp_path / "mmsa" / "models" / "memory.py", "a") as fh:
        fh.write("\n# an edit\n")
    after = digest()
    assert len(before) == 64 and before != after
