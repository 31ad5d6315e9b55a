"""The output set of ``mmsa embed`` and ``mmsa predict`` (mmsa.runtime.output_set): no path of
it may destroy a file the user did not name as the output, it is checked before any work, and
it is published as one set, so no file of an earlier invocation is left beside a new one."""

import hashlib
import os
import stat
import subprocess

import pytest

from mmsa.runtime.output_set import PROBE_BYTES, OutputError, output_set

SIDES = (".rejects.csv", ".neighbours.csv")


def digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def inputs(tmp_path):
    (tmp_path / "in.csv").write_text("smiles\nCCO\n")
    (tmp_path / "model.pt").write_bytes(b"PK\x03\x04" + b"\0" * 60)  # starts as torch.save's zip
    return {"the SMILES file": tmp_path / "in.csv", "--model": tmp_path / "model.pt", "--config": None}


def refused(out, inputs, format=".csv"):
    with pytest.raises(OutputError) as err:
        output_set(out, format, SIDES, inputs)
    return str(err.value)


def test_an_input_is_never_an_output_not_even_through_a_link(tmp_path, inputs):
    before = {p: digest(p) for p in (tmp_path / "in.csv", tmp_path / "model.pt")}
    assert refused(tmp_path / "in.csv", inputs) == (
        f"--out {tmp_path / 'in.csv'}: is the SMILES file {tmp_path / 'in.csv'}, an input of the command; "
        "name a new file"
    )
    os.symlink(tmp_path / "in.csv", tmp_path / "link.csv")
    assert "is the SMILES file" in refused(tmp_path / "link.csv", inputs)
    os.link(tmp_path / "in.csv", tmp_path / "hard.csv")  # another name of the same inode
    assert "is the SMILES file" in refused(tmp_path / "hard.csv", inputs)
    # a side file may not be an input either: --out x gives x.rejects.csv
    (tmp_path / "x.rejects.csv").symlink_to(tmp_path / "in.csv")
    assert refused(tmp_path / "x", inputs).startswith(
        f"--out {tmp_path / 'x.rejects.csv'}: is the SMILES file"
    )
    assert {p: digest(p) for p in before} == before


def test_only_a_new_path_or_a_regular_file_that_holds_no_model_is_written(tmp_path, inputs):
    assert refused("/dev/null", inputs) == (
        "--out /dev/null: a character device, not a regular file; mmsa writes regular files"
    )
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)
    os.mkfifo(tmp_path / "pipe")
    assert refused(tmp_path / "pipe", inputs, "") == (
        f"--out {tmp_path / 'pipe'}: a named pipe, not a regular file; mmsa writes regular files"
    )
    (tmp_path / "folder.csv").mkdir()
    assert refused(tmp_path / "folder.csv", inputs).endswith("a folder; give the name of the file to write")
    assert refused(f"{tmp_path}/new/", inputs) == (
        f"--out {tmp_path}/new/: names a folder; give the name of the file to write"
    )
    (tmp_path / "old-model.csv").write_bytes((tmp_path / "model.pt").read_bytes())  # a model, misnamed
    assert refused(tmp_path / "old-model.csv", inputs) == (
        f"--out {tmp_path / 'old-model.csv'}: holds a model (a torch archive); mmsa does not overwrite models"
    )
    (tmp_path / "dangling.csv").symlink_to(tmp_path / "nowhere")
    assert "a link that leads nowhere" in refused(tmp_path / "dangling.csv", inputs)
    assert not (tmp_path / "new").exists()


def test_a_name_that_claims_another_format_is_refused(tmp_path, inputs):
    assert refused(tmp_path / "e.csv", inputs, ".parquet") == (
        f"--out {tmp_path / 'e.csv'}: the name says CSV, but this command writes Parquet; "
        "give a name ending in .parquet"
    )
    assert "the name says a torch model" in refused(tmp_path / "p.pt", inputs)
    for fine in ("p.csv", "P.CSV", "predictions", "p.v2.csv"):
        assert output_set(tmp_path / fine, ".csv", SIDES, inputs).out == tmp_path / fine


@pytest.fixture
def mounted(tmp_path):
    """A tmpfs at ``tmp_path / "mnt"`` with the given options, when this process may mount one."""
    made = []

    def mount(options):
        where = tmp_path / f"mnt{len(made)}"
        where.mkdir()
        run = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(where)], capture_output=True
        )
        if run.returncode != 0:
            pytest.skip("mounting a tmpfs needs root")
        made.append(where)
        return where

    yield mount
    for where in made:
        subprocess.run(["umount", str(where)], check=True)


def test_a_folder_that_takes_no_write_is_refused_before_any_work(mounted, inputs):
    read_only = mounted("ro,size=64k")
    assert (
        refused(read_only / "p.csv", inputs)
        == f"--out {read_only / 'p.csv'}: cannot be written (Read-only file system)"
    )
    full = mounted(f"size={PROBE_BYTES // 2}")
    (full / "filler").write_bytes(b"\0" * (PROBE_BYTES // 2 - 4096))
    assert (
        refused(full / "p.csv", inputs)
        == f"--out {full / 'p.csv'}: cannot be written (No space left on device)"
    )
    assert sorted(p.name for p in full.iterdir()) == ["filler"]  # the probe left nothing


def write(text):
    return lambda path: path.write_text(text)


def test_the_set_is_published_whole_and_members_not_written_now_are_removed(tmp_path, inputs):
    outputs = output_set(tmp_path / "p.csv", ".csv", SIDES, inputs)
    rejects, neighbours = (outputs.side(s) for s in SIDES)
    outputs.publish({outputs.out: write("new 1"), rejects: write("rejects 1"), neighbours: write("near 1")})
    assert [p.read_text() for p in outputs.members] == ["new 1", "rejects 1", "near 1"]
    # a narrower invocation (no neighbours asked for) leaves no neighbours of the earlier one
    outputs.publish({outputs.out: write("new 2"), rejects: write("rejects 2")})
    assert [p.read_text() for p in outputs.members[:2]] == ["new 2", "rejects 2"] and not neighbours.exists()
    # no usable row: the rejects alone, and no output of an earlier run beside them
    outputs.publish({rejects: write("rejects 3")})
    assert not outputs.out.exists() and rejects.read_text() == "rejects 3"


def test_a_member_that_fails_leaves_the_earlier_set_untouched(tmp_path, inputs):
    outputs = output_set(tmp_path / "p.csv", ".csv", SIDES, inputs)
    rejects, neighbours = (outputs.side(s) for s in SIDES)
    outputs.publish({outputs.out: write("old"), rejects: write("old rejects"), neighbours: write("old near")})

    def fails(path):
        raise OSError(28, "No space left on device")

    with pytest.raises(OutputError, match="cannot be written \\(No space left on device\\)"):
        outputs.publish({outputs.out: write("new"), rejects: fails})
    assert [p.read_text() for p in outputs.members] == ["old", "old rejects", "old near"]
    assert sorted(p.name for p in tmp_path.glob(".tmp-*")) == []
