"""The adversarial input suite: every bad row ends in the rejects table with a reason, every
other row is featurized, and nothing is lost or crashes a stage."""

import gzip
import json

import pandas as pd
import pytest

from cli import mmsa_cli, tiny_models
from helpers import run_chain, toy_config
from mmsa.cli import main
from mmsa.stages.account import AccountingError, account

ROWS = [
    ("CCO", "1", None),
    ("", "0", "empty SMILES"),
    ("C1CC", "1", "unclosed ring"),
    ("CN(C)(C)(C)C", "0", "Explicit valence"),
    ("C1=CC2=CC=C1C=C2", "1", None),  # featurized, but its conformer fails
    ("OCC", "1", "duplicate of row 0"),
    ("c1ccccc1", "x", "label 'x' is not a number"),
    ("   ", "1", "empty SMILES"),
    ("[Na+].[Cl-]", "0", None),
    ("C" * 200, "1", "max_heavy_atoms"),
    ("*C(=O)CC", "1", None),  # dummy atom: no force field parameters, still featurized
    ("C\u2603C", "0", "(U+2603) at position 2 is outside the SMILES alphabet"),
    ("c1cccc1", "1", "sanitization failed"),
    ("[H+]", "0", "no heavy atoms"),
    ('"C(C)O,"', "1", "character ','"),
    ("CC(=O)Oc1ccccc1C(=O)O", "", None),  # missing label is fine
    ("C\udcffC", "1", "an undecodable byte in the file"),  # an invalid UTF-8 byte in the file
    ("CC\x00O", "0", "(U+0000) at position 3 is outside the SMILES alphabet"),  # a NUL byte
    ("\u00e9CCO", "0", "(U+00E9) at position 1 is outside the SMILES alphabet"),  # RDKit: ethanol
    ("CC\tO", "1", "text after whitespace: 'O'"),  # RDKit: ethane named O
    ("not a molecule", "0", "text after whitespace"),
    ("C" * 1_000_000, "1", "smiles field of 1,000,000 characters is longer than the CSV field limit"),
    ("CCCC", "2", "label '2' is neither 0 nor 1"),  # a classification task is binary
    ("CCCCC", "-1", "label '-1' is neither 0 nor 1"),
]


@pytest.fixture
def bad_csv(tmp_path):
    lines = ["smiles,y"] + [f"{s},{y}" for s, y, _ in ROWS]
    (tmp_path / "bad.csv").write_bytes(("\n".join(lines) + "\n").encode("utf-8", "surrogateescape"))
    return tmp_path


def test_every_row_is_featurized_or_rejected_with_a_reason(bad_csv):
    config = toy_config(bad_csv, ["bad"], {"y": "y"}, shard_size=4)
    summary = run_chain(config, "bad", bad_csv / "out")
    assert summary["rows_in"] == len(ROWS)
    assert summary["featurized"] + summary["rejected"] == len(ROWS)
    rejects = pd.read_csv(bad_csv / "out" / "bad" / "rejects.csv", keep_default_na=False)
    by_row = dict(zip(rejects["row"], rejects["reason"], strict=True))
    for row, (_, _, reason) in enumerate(ROWS):
        if reason is None:
            assert row not in by_row, f"row {row} rejected: {by_row.get(row)}"
        else:
            assert reason in by_row[row], f"row {row}: {by_row.get(row)!r} lacks {reason!r}"
    assert summary["conformer_missing"] == 1
    assert json.loads((bad_csv / "out" / "bad" / "accounting.json").read_text()) == {
        k: v for k, v in summary.items() if k != "featurize"
    }


def test_a_lost_row_fails_the_accounting(bad_csv):
    config = toy_config(bad_csv, ["bad"], {"y": "y"}, shard_size=100)
    run_chain(config, "bad", bad_csv / "out")
    d = bad_csv / "out" / "bad"
    manifest = pd.read_parquet(d / "man-0.parquet")
    manifest.iloc[1:].to_parquet(d / "man-0.parquet")  # silently drop one featurized row
    with pytest.raises(AccountingError, match="first missing rows \\[0\\]"):
        account(
            "bad",
            d / "raw.parquet",
            [d / "rej-std.parquet", d / "rej-shard.parquet", d / "rej-feat-0.parquet"],
            [d / "man-0.parquet"],
            d / "acc.json",
            d / "rej.csv",
        )


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """A config, a pretrained and a finetuned model for ``mmsa embed`` / ``mmsa predict``."""
    return tiny_models(tmp_path_factory.mktemp("cli"))


def predict(models, csv, out):
    config, _, finetuned = models
    return mmsa_cli(csv.parent, "predict", csv, "--config", config, "--model", finetuned, "--out", out)


def test_distinct_outputs_get_distinct_rejects_files(models, tmp_path):
    for version, bad in (("v1", "C1CC"), ("v2", "c1cccc1")):
        csv = tmp_path / f"{version}.csv"
        csv.write_text(f"smiles\nCCO\n{bad}\n")
        run = predict(models, csv, tmp_path / f"p.{version}.csv")
        assert run.returncode == 0, run.stderr[-3000:]
    for version, reason in (("v1", "unclosed ring"), ("v2", "sanitization failed")):
        rejects = pd.read_csv(tmp_path / f"p.{version}.csv.rejects.csv")
        assert rejects["row"].tolist() == [1] and reason in rejects["reason"].iloc[0]
    help_text = mmsa_cli(tmp_path, "predict", "--help").stdout
    assert "<out>.rejects.csv (the output's full name" in " ".join(help_text.split())


def embed(models, csv, out):
    config, pretrained, _ = models
    return mmsa_cli(csv.parent, "embed", csv, "--config", config, "--model", pretrained, "--out", out)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "empty file (no header line)"),
        (b"smiles\n", "no data rows after the header"),
        (b"smiles\n\n", "no data rows after the header"),
        (b"name,smi\nethanol,CCO\n", "no SMILES column 'smiles' in the header ['name', 'smi']"),
        (b"smiles\nC1CC\nXyz\n", "none of its 2 rows can be used; reasons in "),
    ],
    ids=["empty", "header-only", "header-and-blank-line", "no-smiles-column", "every-row-invalid"],
)
def test_an_unusable_file_is_one_readable_error(models, tmp_path, capsys, content, message):
    """In-process, for speed: :func:`test_missing_files_are_named` runs the real command."""
    config, pretrained, _ = models
    csv, out = tmp_path / "in.csv", tmp_path / "out.parquet"
    csv.write_bytes(content)
    args = ["embed", str(csv), "--config", str(config), "--model", str(pretrained), "--out", str(out)]
    assert main(args) == 1
    rejects = tmp_path / "out.parquet.rejects.csv"
    expected = f"mmsa embed: {csv}: {message}" + (str(rejects) if message.startswith("none") else "")
    assert capsys.readouterr().err.strip().splitlines()[-1] == expected
    assert not out.exists()
    if message.startswith("none"):
        table = pd.read_csv(rejects)
        assert table["row"].tolist() == [0, 1] and table["reason"].str.len().gt(0).all()


def test_missing_files_are_named(models, tmp_path):
    config, pretrained, _ = models
    (tmp_path / "in.csv").write_text("smiles\nCCO\n")
    run = mmsa_cli(tmp_path, "embed", "nope.csv", "--config", config, "--model", pretrained, "--out", "o")
    assert run.returncode == 1 and run.stderr.strip().splitlines()[-1] == "mmsa embed: nope.csv: no such file"
    run = mmsa_cli(tmp_path, "predict", "in.csv", "--config", config, "--model", "no.pt", "--out", "o.csv")
    assert run.returncode == 1 and "Traceback" not in run.stderr
    assert run.stderr.strip().splitlines()[-1] == (
        "mmsa predict: --model no.pt: no such file; expected a finetuned model "
        "(results/finetune/<dataset>/<model>/seed-<n>.pt)"
    )


def test_an_undecodable_byte_or_a_huge_field_rejects_its_row_only(models, tmp_path):
    csv = tmp_path / "in.csv"
    csv.write_bytes(b"smiles,note\nCCO,ok\nC\xffC,bad byte\nc1ccccc1,caf\xe9\n" + b"C" * 2**20 + b",1 MiB\n")
    run = predict(models, csv, tmp_path / "p.csv")
    assert run.returncode == 0, run.stderr[-3000:]
    assert "Traceback" not in run.stderr
    assert pd.read_csv(tmp_path / "p.csv")["row"].tolist() == [0, 2]
    rejects = pd.read_csv(tmp_path / "p.csv.rejects.csv")
    assert rejects["row"].tolist() == [1, 3] and rejects["input"].iloc[0] == "C\ufffdC"
    assert rejects["reason"].iloc[1] == (
        "smiles field of 1,048,576 characters is longer than the CSV field limit of 131,072"
    )


def test_a_carriage_return_in_a_rejected_cell_stays_inside_its_record(tmp_path):
    """The csv module quotes "\\n" but not a bare "\\r" when lines end in "\\n": the rejects
    file split such a row in two for every reader."""
    (tmp_path / "cr.csv").write_bytes(b'smiles,y\nCCO,1\n"CC\rO",0\n"C\rC\nC",1\nCCN,0\n')
    summary = run_chain(toy_config(tmp_path, ["cr"], {"y": "y"}), "cr", tmp_path / "out")
    assert summary["rows_in"] == 4 and summary["rejected"] == 2
    rejects = pd.read_csv(tmp_path / "out" / "cr" / "rejects.csv", keep_default_na=False)
    assert rejects["row"].tolist() == [1, 2] and rejects["input"].tolist() == ["CC\rO", "C\rC\nC"]


def test_an_unknown_dataset_on_the_command_line_is_one_readable_error(tmp_path, capsys):
    assert main(["fetch", "nonesuch", "--out", str(tmp_path / "raw.parquet")]) == 1
    assert (
        capsys.readouterr()
        .err.strip()
        .splitlines()[-1]
        .startswith("mmsa fetch: dataset 'nonesuch' is not in the registry (bace, bbbp")
    )


def test_a_file_that_is_no_csv_is_one_readable_error(models, tmp_path, capsys):
    """In-process, like :func:`test_an_unusable_file_is_one_readable_error`."""
    config, pretrained, _ = models
    whole = gzip.compress(b"smiles\nCCO\n" * 1000)
    cases = {
        # gzip is told by its magic bytes (a name can lie): a plain CSV named .gz reads as CSV
        "fake.csv": (b"\x1f\x8bsmiles\nCCO\n", "not a readable gzip file ("),
        "cut.csv.gz": (whole[: len(whole) // 2], "not a readable gzip file (Compressed file ended"),
        "binary.csv": (bytes(b for b in range(256) if b not in b"\r\n") * 4000, "no SMILES column 'smiles'"),
        "folder": (None, "not a file"),
    }
    for name, (content, message) in cases.items():
        path = tmp_path / name
        path.mkdir() if content is None else path.write_bytes(content)
        args = [
            "embed",
            str(path),
            "--config",
            str(config),
            "--model",
            str(pretrained),
            "--out",
            str(tmp_path / "o.parquet"),
        ]
        assert main(args) == 1
        line = capsys.readouterr().err.strip().splitlines()[-1]
        assert line.startswith(f"mmsa embed: {path}: {message}") and len(line) < 1000, line
