"""prepare_smiles_file (``mmsa embed`` and ``mmsa predict``): each distinct SMILES cell goes
through the stages once, and every row still gets its own output or rejects row."""

import json

import pyarrow.parquet as pq

from cli import tiny_models
from mmsa.plan.config import load_config
from mmsa.stages.prepare_smiles import prepare_smiles_file


def prepared(tmp_path, lines):
    config, _, _ = tiny_models(tmp_path / "models")
    (tmp_path / "in.csv").write_text("smiles\n" + "\n".join(lines) + "\n")
    (tmp_path / "work").mkdir()
    return prepare_smiles_file(load_config(config), tmp_path / "in.csv", "smiles", tmp_path / "work")


def test_each_distinct_cell_goes_through_the_stages_once(tmp_path):
    # "OCC" is ethanol written otherwise: a cell of its own, the same molecule; "C,C" has two
    # fields under a one-column header, twice
    lines = ["CCO", "c1ccccc1", "CCO", "C1CC", "OCC", "C1CC", "CCO", "C,C", "C,C"]
    result = prepared(tmp_path, lines)
    accounting = json.loads((tmp_path / "work" / "accounting.json").read_text())
    assert accounting["rows_in"] == 5  # CCO, c1ccccc1, C1CC, OCC and the two-field C
    assert result.rows["row"].tolist() == [0, 1, 2, 4, 6]
    assert result.rows["input"].tolist() == ["CCO", "c1ccccc1", "CCO", "OCC", "CCO"]
    keys = result.rows["key"].tolist()
    assert keys[0] == keys[2] == keys[3] == keys[4] != keys[1]
    assert result.rejects["row"].tolist() == [3, 5, 7, 8]
    reasons = result.rejects["reason"].tolist()
    assert reasons[0] == reasons[1] and reasons[2] == reasons[3]
    assert reasons[2] == "2 fields under a 1-column header: a comma inside an unquoted cell?"
    assert result.computed + result.reused == 2  # two molecules featurized (or found)
    distinct, positions = result.distinct_keys()
    assert distinct == [keys[0], keys[1]] and positions.tolist() == [0, 1, 0, 0, 0]


def test_a_file_without_repeated_cells_goes_through_the_stages_as_it_is(tmp_path):
    """No cell repeated: the stages read the fetched table itself, so the outputs are as before."""
    result = prepared(tmp_path, ["CCO", "OCC", "C1CC", "c1ccccc1"])
    work = tmp_path / "work"
    assert pq.read_table(work / "distinct.parquet").equals(pq.read_table(work / "raw.parquet"))
    assert result.rows["row"].tolist() == [0, 1, 3] and result.rejects["row"].tolist() == [2]
