"""A small, varied set of real drug-like SMILES that the evaluation tests share.

Each molecule is core ring system + linker + end ring system + optional substituent on the core.
Substituents leave the Murcko scaffold unchanged, so scaffold groups have sizes 1 to 4 by
construction, which is what split tests need; the rings and linkers are common in drugs.
"""

from collections import Counter
from itertools import product

from rdkit import Chem
from rdkit.Chem.Scaffolds import MurckoScaffold

CORES = ["c1ccc(cc1)", "c1ccc(nc1)", "c1ccc(o1)", "c1ccc(s1)", "C1CCN(CC1)", "c1ccc2[nH]c(cc2c1)"]
LINKERS = ["C(=O)N", "C", "", "S(=O)(=O)", "CC"]
ENDS = ["c1ccccc1", "c1ccncc1", "C1CCOCC1", "C1CC1", "c1ccc2ccccc2c1", "c1cn[nH]c1"]
SUBSTITUENTS = ["", "C", "Cl", "F"]


def _drug_like() -> list[str]:
    smiles = []
    for i, (core, linker, end) in enumerate(list(product(CORES, LINKERS, ENDS))[::4]):
        smiles += [f"{sub}{core}{linker}{end}" for sub in SUBSTITUENTS[: 1 + i % 4]]
    return smiles


DRUG_LIKE = _drug_like()


def scaffold_of(smiles: str) -> str:
    return MurckoScaffold.MurckoScaffoldSmiles(smiles=smiles, includeChirality=True)


def test_molecules_are_valid_distinct_and_varied() -> None:
    canonical = [Chem.CanonSmiles(s) for s in DRUG_LIKE]
    assert len(DRUG_LIKE) == 111
    assert len(set(canonical)) == len(DRUG_LIKE)
    group_sizes = Counter(scaffold_of(s) for s in DRUG_LIKE).values()
    assert len(group_sizes) == 45
    assert set(group_sizes) == {1, 2, 3, 4}
