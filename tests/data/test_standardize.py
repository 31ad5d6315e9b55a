import pandas as pd
import pytest

from mmsa.data.label_cells import LabelError, hiv_active, label_reader, to_float
from mmsa.data.registry import DatasetSpec
from mmsa.data.standardized_molecules import (
    RejectedMolecule,
    StandardizeOptions,
    standardize_frame,
    standardize_molecule,
)

OPTIONS = StandardizeOptions()


def spec(task_type: str, **fields: object) -> DatasetSpec:
    return DatasetSpec(name="toy", source="local", smiles_column="smiles", task_type=task_type, **fields)


@pytest.mark.parametrize(
    "a,b", [("OCC", "CCO"), ("C1=CC=CC=C1O", "Oc1ccccc1"), ("[Na+].[O-]C(=O)C", "CC(=O)O")]
)
def test_equivalent_inputs_get_one_key(a, b):
    assert standardize_molecule(a, OPTIONS)[1] == standardize_molecule(b, OPTIONS)[1]


def test_stereo_is_kept_in_the_key():
    key = standardize_molecule("C[C@H](N)C(=O)O", OPTIONS)[1]
    assert "@" in key
    assert key != standardize_molecule("C[C@@H](N)C(=O)O", OPTIONS)[1]


def test_standardization_switches_are_honoured():
    raw = StandardizeOptions(largest_fragment=False, neutralize=False)
    assert standardize_molecule("[Na+].CC(=O)[O-]", raw)[1] == "CC(=O)[O-].[Na+]"
    assert standardize_molecule("[Na+].CC(=O)[O-]", OPTIONS)[1] == "CC(=O)O"


@pytest.mark.parametrize(
    ("smiles", "reason"),
    [
        ("", "empty SMILES"),
        ("   ", "empty SMILES"),
        (None, "missing SMILES"),
        (float("nan"), "missing SMILES"),
        ("C1CC", "unclosed ring"),
        ("CN(C)(C)(C)C", "Explicit valence"),
        ("notamolecule", "SMILES parse error"),
        ("[Xe]" * 0 + "C" * 160, "exceed data.standardize.max_heavy_atoms=150"),
    ],
)
def test_rejections_carry_rdkit_reasons(smiles, reason):
    with pytest.raises(RejectedMolecule, match=reason):
        standardize_molecule(smiles, OPTIONS)


def test_frame_split_keeps_every_row_somewhere():
    frame = pd.DataFrame(
        {"row": range(5), "smiles": ["CCO", "", "C1CC", "c1ccccc1", "CC"], "y": ["1", "0", "1", "oops", ""]}
    )
    kept, rejects = standardize_frame(frame, ["y"], spec("regression"), OPTIONS)
    assert sorted(kept["row"].tolist() + rejects["row"].tolist()) == list(range(5))
    assert kept["row"].tolist() == [0, 4]
    assert kept["y"].iloc[0] == 1.0 and pd.isna(kept["y"].iloc[1])
    assert rejects.set_index("row").loc[3, "reason"] == "task y: label 'oops' is not a number"
    assert set(rejects["stage"]) == {"standardize"}


def test_label_transforms():
    assert to_float(" 2.5 ") == 2.5
    assert hiv_active("CM") == hiv_active("CA") == 1.0 and hiv_active("CI") == 0.0
    with pytest.raises(LabelError):
        hiv_active("XX")
    with pytest.raises(LabelError):
        to_float("inf")


@pytest.mark.parametrize("cell", ["2", "-1", "0.5", "1.0000001"])
def test_a_classification_label_other_than_0_or_1_rejects_its_row(cell):
    frame = pd.DataFrame(
        {"row": [0, 1, 2, 3], "smiles": ["CCO", "CCN", "CCC", "CCCl"], "y": ["1", cell, "", "0.0"]}
    )
    kept, rejects = standardize_frame(frame, ["y"], spec("classification"), OPTIONS)
    assert kept["row"].tolist() == [0, 2, 3] and kept["y"].tolist()[::2] == [1.0, 0.0]
    assert rejects["row"].tolist() == [1]
    assert (
        rejects["reason"].iloc[0] == f"task y: label {cell!r} is neither 0 nor 1 (binary classification task)"
    )
    kept, rejects = standardize_frame(frame, ["y"], spec("regression"), OPTIONS)
    assert kept["row"].tolist() == [0, 1, 2, 3] and rejects.empty


def test_hiv_labels_pass_the_binary_check():
    assert label_reader("hiv_active", "classification")("CM") == 1.0


@pytest.mark.parametrize(
    ("smiles", "reason"),
    [
        ("\u00e9CCO", "character '\u00e9' (U+00E9) at position 1 is outside the SMILES alphabet"),
        ("CC\x00O", "character '\\x00' (U+0000) at position 3 is outside the SMILES alphabet"),
        ("C\x1bC", "character '\\x1b' (U+001B) at position 2 is outside the SMILES alphabet"),
        ("C,C", "character ',' (U+002C) at position 2 is outside the SMILES alphabet"),
        ("CC>>CO", "character '>' (U+003E) at position 3 is outside the SMILES alphabet"),
        (
            "C\ufffdC",
            "(U+FFFD) at position 2 is outside the SMILES alphabet (an undecodable byte in the file)",
        ),
        ("CC\tO", "text after whitespace: 'O' (SMILES hold no whitespace;"),
        ("CCO ethanol", "text after whitespace: 'ethanol'"),
        ("CCO |$R;;$|", "CXSMILES extension '|$R;;$|' is not read"),
    ],
)
def test_what_rdkit_would_silently_misread_is_rejected(smiles, reason):
    """RDKit reads \u00e9CCO as ethanol and CC<tab>O as ethane (the O being a name)."""
    with pytest.raises(RejectedMolecule) as info:
        standardize_molecule(smiles, OPTIONS)
    assert reason in str(info.value)


def test_every_character_of_the_alphabet_is_accepted():
    from mmsa.data.standardized_molecules import SMILES_ALPHABET

    smiles = "[13CH2:7]=[N+]([O-])C1=CC=C(Br)C=C1.[*]C#N.F/C=C/Cl.C%10CCCCC%10.[Se]S[C@@H](I)P.[Cr]$[Cr]"
    assert set(smiles) - SMILES_ALPHABET == set()
    assert standardize_molecule(smiles, StandardizeOptions(largest_fragment=False))[1]


def test_names_after_the_smiles_only_where_the_spec_says_so():
    frame = pd.DataFrame(
        {"row": [0, 1, 2, 3], "smiles": ["CCO ethanol", "c1ccccc1\tbenzene", " CCN ", "CC |$;;$|"]}
    )
    kept, rejects = standardize_frame(frame, [], spec("none", smiles_names=True), OPTIONS)
    assert kept["key"].tolist() == ["CCO", "c1ccccc1", "CCN"] and kept["input"].iloc[0] == "CCO ethanol"
    assert rejects["row"].tolist() == [3] and "CXSMILES" in rejects["reason"].iloc[0]
    kept, rejects = standardize_frame(frame, [], spec("none"), OPTIONS)
    assert kept["row"].tolist() == [2] and rejects["row"].tolist() == [0, 1, 3]


def test_a_key_the_pipeline_cannot_read_back_rejects_its_row():
    # cobalamin (ClinTox): RDKit writes its cobalt bonds as dative "->", which the split and the
    # fingerprints (parse_molecule) would refuse after standardization
    from mmsa.data.standardized_molecules import RejectedMolecule, StandardizeOptions, standardize_molecule

    cobalamin = (
        "Cc1cc2c(cc1C)N3C=N2[Co+]456(N7=C8[C@H](C(C7=CC9=N4C(=C(C1=N5[C@@]([C@@H]2N6C(=C8C)[C@@]"
        "([C@H]2CC(=O)N)(CCC(=O)NC[C@H](OP(=O)(O[C@@H]2[C@H](O[C@H]3[C@@H]2O)CO)[O-])C)C)([C@@]"
        "([C@@H]1CCC(=O)N)(C)CC(=O)N)C)C)[C@@]([C@@H]9CCC(=O)N)(C)CC(=O)N)(C)C)CCC(=O)N)O"
    )
    with pytest.raises(RejectedMolecule, match="does not parse back: character '<'"):
        standardize_molecule(cobalamin, StandardizeOptions())
