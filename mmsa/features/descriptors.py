"""The descriptor view: RDKit's 2D descriptors of each molecule, raw, with failures as NaN.

Chemists' strongest classical model is a forest on fingerprints plus these descriptors, and the
pretraining that transfers best in the literature predicts them (CheMeleon regresses 2D
descriptors; KPGT and GROVER pretrain on descriptors and fingerprints). So every molecule's
descriptors are computed once in featurization and kept in the feature cache, under the same
fingerprint as the other views (the list follows the RDKit version, which the fingerprint names).

All of ``Descriptors.descList`` (217 in RDKit 2026.09): no subset is chosen by hand, so nothing
is selected on a test set; what a model uses is standardized downstream, with statistics of
the data it is trained on. Values are stored as computed (float64); a descriptor that fails or
is not finite (``Ipc`` overflows for large molecules) is NaN, so a consumer masks it instead of
reading a zero as a value.

The loop over the list is ours, not ``Descriptors.CalcMolDescriptors``: that one catches every
failure with a bare ``except``, a Ctrl-C included, so a key pressed while descriptors were
computed became one NaN and the command ran on to status 0 (``tests/workflow/test_interrupt.py``
failed by chance on it).
"""

from __future__ import annotations

import numpy as np
from rdkit import Chem
from rdkit.Chem import Descriptors

DESCRIPTOR_NAMES: tuple[str, ...] = tuple(name for name, _ in Descriptors.descList)


def compute_descriptors(mol: Chem.Mol) -> np.ndarray:
    """Every descriptor of :data:`DESCRIPTOR_NAMES` for ``mol`` as float64; NaN where one fails
    or is not finite. Never raises for a molecule RDKit parsed."""
    out = np.full(len(DESCRIPTOR_NAMES), np.nan)
    for i, (_, function) in enumerate(Descriptors.descList):
        try:
            out[i] = function(mol)
        except Exception:  # RDKit's failure for this molecule: NaN; KeyboardInterrupt goes up
            continue
    out[~np.isfinite(out)] = np.nan
    return out
