"""2D molecular graph features following Hu et al. 2019 ("Strategies for Pre-training GNNs").

Every feature is a small integer index so that encoders embed each column with its own
``nn.Embedding`` and sum them (as OGB's AtomEncoder does). The "hu" set is the two atom columns
(atom type, chirality) and two bond columns (bond type, bond direction) of the paper; the
"rich" set appends degree, formal charge, hydrogen count, hybridization, aromaticity and ring
membership to the atoms and conjugation and ring membership to the bonds.

Vocabulary sizes below follow from the indices: atom type has one index for unknown elements and
one for the mask token of masking-style pretraining; chirality and hybridization have one for any
value not listed; bond type has one for GIN's self loops and one shared by the mask token and
unlisted bond types; an unlisted bond direction counts as none; degree, formal charge and
hydrogen count are capped (values past a cap share its index).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from rdkit import Chem

GRAPH_FEATURE_SETS = ("hu", "rich")

# Atom type: atomic number 1..118 -> 0..117, 118 = unknown, 119 = mask token.
ELEMENTS = 118
ATOM_TYPE_UNKNOWN = ELEMENTS
ATOM_TYPE_MASK = ELEMENTS + 1
# Caps of the rich atom columns: larger values share the last index (formal charges -5..+5 map
# to 0..10, lower and higher ones to 0 and 10); the vocabulary sizes below follow from them.
MAX_DEGREE = 10
CHARGE_OFFSET = 5
MAX_HYDROGENS = 8
_CHIRALITY = [
    Chem.rdchem.ChiralType.CHI_UNSPECIFIED,
    Chem.rdchem.ChiralType.CHI_TETRAHEDRAL_CW,
    Chem.rdchem.ChiralType.CHI_TETRAHEDRAL_CCW,
]  # anything else -> len(_CHIRALITY) ("other")
_HYBRIDIZATION = [
    Chem.rdchem.HybridizationType.S,
    Chem.rdchem.HybridizationType.SP,
    Chem.rdchem.HybridizationType.SP2,
    Chem.rdchem.HybridizationType.SP3,
    Chem.rdchem.HybridizationType.SP3D,
    Chem.rdchem.HybridizationType.SP3D2,
]  # anything else -> len(_HYBRIDIZATION)
_BOND_TYPES = [
    Chem.rdchem.BondType.SINGLE,
    Chem.rdchem.BondType.DOUBLE,
    Chem.rdchem.BondType.TRIPLE,
    Chem.rdchem.BondType.AROMATIC,
]
BOND_TYPE_SELF_LOOP = len(_BOND_TYPES)  # added by GIN
BOND_TYPE_MASK = len(_BOND_TYPES) + 1  # mask token, and any other bond type
_BOND_DIRS = [
    Chem.rdchem.BondDir.NONE,
    Chem.rdchem.BondDir.ENDUPRIGHT,
    Chem.rdchem.BondDir.ENDDOWNRIGHT,
]  # anything else -> 0 (none)

# Vocabulary size of every column, in column order, derived from the indices above.
HU_ATOM_DIMS = [ATOM_TYPE_MASK + 1, len(_CHIRALITY) + 1]
HU_BOND_DIMS = [BOND_TYPE_MASK + 1, len(_BOND_DIRS)]
RICH_ATOM_DIMS = HU_ATOM_DIMS + [  # degree, charge, nH, hybrid, aromatic, in ring
    MAX_DEGREE + 1,
    2 * CHARGE_OFFSET + 1,
    MAX_HYDROGENS + 1,
    len(_HYBRIDIZATION) + 1,
    2,
    2,
]
RICH_BOND_DIMS = HU_BOND_DIMS + [2, 2]  # conjugated, in ring


def atom_feature_dims(feature_set: str) -> list[int]:
    """Vocabulary size of each atom feature column for ``feature_set``."""
    return list(RICH_ATOM_DIMS if _check_set(feature_set) == "rich" else HU_ATOM_DIMS)


def bond_feature_dims(feature_set: str) -> list[int]:
    """Vocabulary size of each bond feature column for ``feature_set``."""
    return list(RICH_BOND_DIMS if _check_set(feature_set) == "rich" else HU_BOND_DIMS)


def _check_set(feature_set: str) -> str:
    if feature_set not in GRAPH_FEATURE_SETS:
        raise ValueError(f"unknown graph feature set {feature_set!r}; use one of {GRAPH_FEATURE_SETS}")
    return feature_set


def _index(value: object, choices: list, fallback: int) -> int:
    return choices.index(value) if value in choices else fallback


@dataclass(frozen=True)
class MolGraph:
    """One molecule's graph as integer arrays, ready for Parquet or a PyG ``Data``.

    ``atom_features`` is (n_atoms, n_atom_cols) and ``edge_index``/``edge_features`` hold
    every bond twice, once per direction, as PyG expects for undirected graphs.
    """

    atom_features: np.ndarray  # int16 (n_atoms, A)
    edge_index: np.ndarray  # int32 (2, 2 * n_bonds)
    edge_features: np.ndarray  # int8 (2 * n_bonds, B)

    @property
    def num_atoms(self) -> int:
        return int(self.atom_features.shape[0])


def atom_row(atom: Chem.Atom, rich: bool) -> list[int]:
    """Feature indices of one atom (see the module docstring for the columns)."""
    num = atom.GetAtomicNum()
    row = [
        num - 1 if 1 <= num <= ELEMENTS else ATOM_TYPE_UNKNOWN,
        _index(atom.GetChiralTag(), _CHIRALITY, len(_CHIRALITY)),
    ]
    if rich:
        row += [
            min(atom.GetDegree(), MAX_DEGREE),
            min(max(atom.GetFormalCharge() + CHARGE_OFFSET, 0), 2 * CHARGE_OFFSET),
            min(atom.GetTotalNumHs(), MAX_HYDROGENS),
            _index(atom.GetHybridization(), _HYBRIDIZATION, len(_HYBRIDIZATION)),
            int(atom.GetIsAromatic()),
            int(atom.IsInRing()),
        ]
    return row


def bond_row(bond: Chem.Bond, rich: bool) -> list[int]:
    """Feature indices of one bond (see the module docstring for the columns)."""
    row = [
        _index(bond.GetBondType(), _BOND_TYPES, BOND_TYPE_MASK),
        _index(bond.GetBondDir(), _BOND_DIRS, 0),
    ]
    if rich:
        row += [int(bond.GetIsConjugated()), int(bond.IsInRing())]
    return row


def mol_to_graph(mol: Chem.Mol, feature_set: str = "hu") -> MolGraph:
    """Graph features of a sanitized RDKit molecule (implicit hydrogens, as in Hu et al.)."""
    rich = _check_set(feature_set) == "rich"
    atoms = np.array([atom_row(a, rich) for a in mol.GetAtoms()], dtype=np.int16)
    n_atom_cols = len(RICH_ATOM_DIMS if rich else HU_ATOM_DIMS)
    atoms = atoms.reshape(-1, n_atom_cols)
    src, dst, feats = [], [], []
    for bond in mol.GetBonds():
        i, j = bond.GetBeginAtomIdx(), bond.GetEndAtomIdx()
        row = bond_row(bond, rich)
        src += [i, j]
        dst += [j, i]
        feats += [row, row]
    n_bond_cols = len(RICH_BOND_DIMS if rich else HU_BOND_DIMS)
    edge_index = np.array([src, dst], dtype=np.int32).reshape(2, -1)
    edge_features = np.array(feats, dtype=np.int8).reshape(-1, n_bond_cols)
    return MolGraph(atoms, edge_index, edge_features)
