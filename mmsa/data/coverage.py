"""Does the pretraining corpus cover the chemistry of each finetuning dataset?

A pretrained encoder that meets phosphorus, iodine or formal charges for the first time during
finetuning, or whose corpus molecules are all smaller than the median test molecule, has little
to transfer. This table puts the corpus beside every finetuning dataset: size, molecular weight
and heavy atom percentiles, elements (and those the corpus never has) and charged atoms,
computed with RDKit on the standardized molecules the pipeline actually uses (each shard row's
key, the canonical SMILES after standardization), so it describes what was trained on.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
from rdkit import Chem
from rdkit.Chem import Descriptors

from mmsa.runtime.io import write_csv, write_text
from mmsa.runtime.tables import markdown_table

PERCENTILES = (5, 50, 95)
PRETRAINING, FINETUNING = "pretraining", "finetuning"


def molecule_coverage(keys: Iterable[str]) -> dict[str, Any]:
    """Size, weight and heavy atom percentiles, elements and charged atoms of standardized SMILES."""
    weights, heavy, elements, charged, charged_molecules, count = [], [], set(), 0, 0, 0
    for key in keys:
        mol = Chem.MolFromSmiles(key)
        if mol is None:  # standardization checked that every key parses back
            raise ValueError(f"standardized key {key!r} does not parse")
        count += 1
        weights.append(Descriptors.MolWt(mol))
        heavy.append(mol.GetNumHeavyAtoms())
        elements |= {atom.GetSymbol() for atom in mol.GetAtoms()}
        ions = sum(atom.GetFormalCharge() != 0 for atom in mol.GetAtoms())
        charged += ions
        charged_molecules += ions > 0
    if count == 0:
        raise ValueError("no molecules")
    row: dict[str, Any] = {"molecules": count}
    for name, values in (("weight", weights), ("heavy_atoms", heavy)):
        for p, value in zip(PERCENTILES, np.percentile(values, PERCENTILES), strict=True):
            row[f"{name}_p{p}"] = round(float(value), 1)
    row["elements"] = " ".join(sorted(elements))
    row["charged_atoms"] = charged
    row["charged_molecules"] = charged_molecules
    return row


def shard_keys(folder: str | os.PathLike) -> list[str]:
    """The keys of every shard of a dataset (its molecules after standardization and de-duplication)."""
    files = sorted(Path(folder).glob("shard-*.parquet"))
    return [key for f in files for key in pq.read_table(f, columns=["key"])["key"].to_pylist()]


def coverage_table(corpus: str, shards: dict[str, str | os.PathLike]) -> pd.DataFrame:
    """One row per dataset of ``shards`` (name -> shard folder), the pretraining ``corpus`` first,
    with the elements each dataset has that the corpus never has."""
    if corpus not in shards:
        raise ValueError(f"no shards for the pretraining dataset {corpus!r}")
    names = [corpus, *sorted(set(shards) - {corpus})]
    rows = [
        {
            "dataset": name,
            "role": PRETRAINING if name == corpus else FINETUNING,
            **molecule_coverage(shard_keys(shards[name])),
        }
        for name in names
    ]
    known = set(rows[0]["elements"].split())
    for row in rows:
        row["elements_not_in_corpus"] = " ".join(sorted(set(row["elements"].split()) - known))
    return pd.DataFrame(rows)


def coverage_markdown(table: pd.DataFrame) -> str:
    """The table as the report shows it: percentiles as p5 / p50 / p95, rounded."""

    def spread(row: pd.Series, name: str) -> str:
        return " / ".join(f"{row[f'{name}_p{p}']:.0f}" for p in PERCENTILES)

    grid = pd.DataFrame(
        {
            "dataset": table["dataset"],
            "role": table["role"],
            "molecules": [f"{n:,}" for n in table["molecules"]],
            "weight p5 / p50 / p95": [spread(row, "weight") for _, row in table.iterrows()],
            "heavy atoms p5 / p50 / p95": [spread(row, "heavy_atoms") for _, row in table.iterrows()],
            "charged atoms (molecules)": [
                f"{atoms:,} ({molecules:,})"
                for atoms, molecules in zip(table["charged_atoms"], table["charged_molecules"], strict=True)
            ],
            "elements": table["elements"],
            "elements not in the corpus": [e or "-" for e in table["elements_not_in_corpus"]],
        }
    )
    return markdown_table(grid, right=("molecules", "charged atoms (molecules)"))


def write_coverage(
    corpus: str, shards: dict[str, str | os.PathLike], csv_path: str | os.PathLike, md_path: str | os.PathLike
) -> pd.DataFrame:
    """Write the coverage table as CSV and Markdown; return it."""
    table = coverage_table(corpus, shards)
    write_csv(table, csv_path)
    title = f"# Coverage of the finetuning datasets by the pretraining corpus ({corpus})\n\n"
    write_text(title + coverage_markdown(table), md_path)
    return table
