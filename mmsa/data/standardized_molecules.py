"""Turn raw rows into standardized molecules keyed by canonical isomeric SMILES.

Every input row ends up in exactly one of two tables: kept rows (with their key and float
labels) or rejects (row number, input, stage, reason). RDKit's own error message becomes the
reason, so a chemist can see why a molecule was dropped without rerunning anything. The
standardize stage, which runs this over a whole fetched table, is :mod:`mmsa.data.standardize_parts`.
"""

from __future__ import annotations

import contextlib
import io
import re
import string
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import pandas as pd
from rdkit import Chem, rdBase
from rdkit.Chem.MolStandardize import rdMolStandardize

from mmsa.data.columns import FETCH_ERROR
from mmsa.data.label_cells import LabelError, label_reader
from mmsa.data.labelled_molecules import ID_COLUMNS
from mmsa.data.registry import DatasetSpec
from mmsa.runtime.from_mapping import from_mapping

REJECT_COLUMNS = ["row", "input", "stage", "reason"]
SMILES_ALPHABET = frozenset(string.ascii_letters + string.digits + "()[]=#$:/\\.+-@%*")
"""Every character a SMILES string can hold, after OpenSMILES (http://opensmiles.org/opensmiles.html):
element symbols, ``H`` counts and chirality classes (letters), ring closures, isotopes, charges
and atom classes (digits, ``%``, ``+``, ``-``, ``:``), chirality ``@``, bonds ``- = # $ : / \\``,
branches ``( )``, bracket atoms ``[ ]``, the dot of disconnected parts and the wildcard ``*``.
RDKit's parser is more lenient (it reads ``éCCO`` as ethanol), so a SMILES with any other
character is rejected before parsing. Whitespace is not in it: text after whitespace is a name
or a CXSMILES extension (see :func:`smiles_text`)."""
_TIMESTAMP = re.compile(r"^\[\d\d:\d\d:\d\d\] ", re.MULTILINE)


@dataclass(frozen=True)
class StandardizeOptions:
    """What standardization does; recorded with every output so runs can be compared."""

    largest_fragment: bool = True
    neutralize: bool = True
    max_heavy_atoms: int = 150

    @classmethod
    def from_dict(cls, cfg: Mapping[str, Any] | None) -> StandardizeOptions:
        return from_mapping(cls, cfg)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class RejectedMolecule(ValueError):
    """A SMILES that cannot become a molecule key; the message is the reason."""


@contextlib.contextmanager
def _rdkit_messages() -> Any:
    """Capture what RDKit logs (parse and valence errors) instead of printing it."""
    rdBase.LogToPythonStderr()
    buffer = io.StringIO()
    with contextlib.redirect_stderr(buffer):
        yield buffer


def _last_message(buffer: io.StringIO) -> str:
    text = _TIMESTAMP.sub("", buffer.getvalue()).strip()
    return text.splitlines()[-1] if text else "unknown RDKit error"


def _shown(text: str, limit: int = 40) -> str:
    return repr(text if len(text) <= limit else text[:limit] + "...")


def smiles_text(cell: object, names: bool = False) -> str:
    """The SMILES of a cell, checked against :data:`SMILES_ALPHABET`.

    Surrounding whitespace is dropped. Text after inner whitespace is the molecule's name in the
    "SMILES name" file convention: it is dropped where ``names`` is true (the dataset spec's
    ``smiles_names``) and rejected otherwise, since RDKit would silently read ``CC<tab>O`` as
    ethane. A CXSMILES extension (``CCO |$R;;$|``) is rejected either way: the key would drop
    what it says (enhanced stereo, labels, coordinates).
    """
    if cell is None or (isinstance(cell, float) and cell != cell):
        raise RejectedMolecule("missing SMILES")
    if not isinstance(cell, str):
        raise RejectedMolecule(f"SMILES is a {type(cell).__name__}, not text")
    parts = cell.split(None, 1)
    if not parts:
        raise RejectedMolecule("empty SMILES")
    text, rest = parts[0], parts[1].strip() if len(parts) > 1 else ""
    if rest.startswith("|"):
        raise RejectedMolecule(f"CXSMILES extension {_shown(rest)} is not read")
    if rest and not names:
        raise RejectedMolecule(
            f"text after whitespace: {_shown(rest)} (SMILES hold no whitespace; a dataset whose "
            "cells carry names sets smiles_names)"
        )
    for position, char in enumerate(text, 1):
        if char not in SMILES_ALPHABET:
            note = " (an undecodable byte in the file)" if char == "\ufffd" else ""
            raise RejectedMolecule(
                f"character {char!r} (U+{ord(char):04X}) at position {position} is outside the "
                f"SMILES alphabet{note}"
            )
    return text


def parse_molecule(smiles: object, names: bool = False) -> Chem.Mol:
    """Parse and sanitize ``smiles`` (see :func:`smiles_text` for ``names``); raise
    :class:`RejectedMolecule` with the reason, RDKit's where RDKit refuses it."""
    text = smiles_text(smiles, names)
    with _rdkit_messages() as messages:
        mol = Chem.MolFromSmiles(text, sanitize=False)
        if mol is None:
            raise RejectedMolecule(f"SMILES parse error: {_last_message(messages)}")
        try:
            Chem.SanitizeMol(mol)
        except Exception as err:  # RDKit raises several unrelated exception types here
            raise RejectedMolecule(f"sanitization failed: {err}") from None
    return mol


def standardize_molecule(
    smiles: object, options: StandardizeOptions, names: bool = False
) -> tuple[Chem.Mol, str]:
    """The standardized molecule and its key (canonical isomeric SMILES)."""
    mol = parse_molecule(smiles, names)
    with _rdkit_messages():
        if options.largest_fragment:
            mol = rdMolStandardize.LargestFragmentChooser(preferOrganic=True).choose(mol)
        if options.neutralize:
            mol = rdMolStandardize.Uncharger().uncharge(mol)
        heavy = mol.GetNumHeavyAtoms()
        if heavy == 0:
            raise RejectedMolecule("no heavy atoms after standardization")
        if heavy > options.max_heavy_atoms:
            raise RejectedMolecule(
                f"{heavy} heavy atoms exceed data.standardize.max_heavy_atoms={options.max_heavy_atoms}"
            )
        key = Chem.MolToSmiles(mol, isomericSmiles=True)
        try:  # the split and the fingerprints read the key with parse_molecule again
            parse_molecule(key)
        except RejectedMolecule as err:  # e.g. RDKit's dative bonds "->" in a metal complex
            raise RejectedMolecule(f"canonical SMILES {key!r} does not parse back: {err}") from None
    return mol, key


def standardize_frame(
    frame: pd.DataFrame,
    tasks: list[str],
    spec: DatasetSpec,
    options: StandardizeOptions,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split raw rows (``row``, ``smiles``, task columns) into kept rows and rejects.

    Kept rows have ``row``, ``input``, ``key`` and one float column per task (NaN = missing).
    A row the reader could not read (a ``fetch_error``) is rejected at stage ``fetch``. Labels
    are read by ``spec``'s label transform and checked against its task type.
    """
    transform = label_reader(spec.label_transform, spec.task_type)
    kept: list[dict[str, Any]] = []
    rejects: list[dict[str, Any]] = []
    for record in frame.to_dict("records"):
        row, smiles = int(record["row"]), record["smiles"]
        error = record.get(FETCH_ERROR)
        if isinstance(error, str) and error:  # a missing cell reads as None or NaN
            rejects.append({"row": row, "input": _as_text(smiles), "stage": "fetch", "reason": error})
            continue
        try:
            labels = {}
            for task in tasks:
                try:
                    labels[task] = transform(record[task])
                except LabelError as err:
                    raise RejectedMolecule(f"task {task}: {err}") from None
            _, key = standardize_molecule(smiles, options, spec.smiles_names)
        except RejectedMolecule as err:
            rejects.append(
                {"row": row, "input": _as_text(smiles), "stage": "standardize", "reason": str(err)}
            )
            continue
        kept.append({"row": row, "input": smiles, "key": key, **labels})
    kept_frame = pd.DataFrame(kept, columns=[*ID_COLUMNS, *tasks])
    kept_frame = kept_frame.astype({"row": "int64", **{t: "float64" for t in tasks}})
    return kept_frame, reject_frame(rejects)


def reject_frame(records: list[dict[str, Any]]) -> pd.DataFrame:
    """A rejects table with the standard columns and types, possibly empty."""
    frame = pd.DataFrame(records, columns=REJECT_COLUMNS)
    return frame.astype({"row": "int64", "input": "string", "stage": "string", "reason": "string"})


def _as_text(value: object) -> str:
    return "" if value is None or (isinstance(value, float) and value != value) else str(value)
