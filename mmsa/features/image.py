"""2D depictions rendered by RDKit's Cairo backend, as uint8 RGB arrays (3, size, size).

Rendering goes PNG -> array through Pillow (an RDKit dependency). Coordinates come from
RDKit's own 2D layout with a fixed ``prepareMolsBeforeDrawing`` pass, so the same molecule
always gives the same pixels.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image
from rdkit import Chem
from rdkit.Chem.Draw import rdMolDraw2D


def render_image(mol: Chem.Mol, size: int) -> np.ndarray:
    """The molecule drawn on a white ``size`` x ``size`` canvas, channels first (3, H, W)."""
    drawer = rdMolDraw2D.MolDraw2DCairo(size, size)
    options = drawer.drawOptions()
    options.clearBackground = True
    options.addStereoAnnotation = False
    rdMolDraw2D.PrepareAndDrawMolecule(drawer, Chem.Mol(mol))
    drawer.FinishDrawing()
    picture = Image.open(io.BytesIO(drawer.GetDrawingText())).convert("RGB")
    return np.ascontiguousarray(np.asarray(picture, dtype=np.uint8).transpose(2, 0, 1))
