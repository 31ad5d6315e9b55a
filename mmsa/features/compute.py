"""Featurize molecules: the work done inside Dask worker processes.

Kept apart from the stage code so that a worker process imports RDKit and NumPy only, not
the storage stack, and starts quickly.
"""

from __future__ import annotations

from typing import Any

from rdkit import Chem

from mmsa.features.conformer import generate_conformer
from mmsa.features.descriptors import compute_descriptors
from mmsa.features.graph import mol_to_graph
from mmsa.features.image import render_image
from mmsa.features.interrupts import raise_if_interrupted, watched_rdkit
from mmsa.features.settings import FeatureSettings


def featurize_molecule(key: str, settings: FeatureSettings) -> dict[str, Any]:
    """All views of one standardized molecule (graph, conformer, image, descriptors), or
    ``{"key", "error"}`` if impossible.

    Conformer and image failures are recorded as status, not errors: the molecule keeps its
    other views; a failed descriptor is NaN.
    """
    try:
        mol = Chem.MolFromSmiles(key)
        if mol is None:
            raise ValueError("key does not parse as SMILES")
        graph = mol_to_graph(mol, settings.graph_features)
    except Exception as err:  # anything here means the molecule has no usable graph
        return {"key": key, "error": f"graph featurization failed: {err}"}
    conformer = generate_conformer(mol, settings.conformer)
    try:
        image, image_detail = render_image(mol, settings.image_size), "cairo"
    except Exception as err:  # a rendering failure costs the image view only
        image, image_detail = None, f"rendering failed: {err}"
    return {
        "key": key,
        "num_atoms": graph.num_atoms,
        "atom_features": graph.atom_features.ravel().tolist(),
        "edge_index": graph.edge_index.ravel().tolist(),
        "edge_features": graph.edge_features.ravel().tolist(),
        "coords": conformer.coords,
        "conf_ok": conformer.ok,
        "conf_detail": conformer.detail,
        "image": image,
        "image_ok": image is not None,
        "image_detail": image_detail,
        "descriptors": compute_descriptors(mol).tolist(),
    }


def featurize_chunk(keys: list[str], settings: dict[str, Any]) -> list[dict[str, Any]]:
    """Featurize a list of keys (one Dask task); a Ctrl-C that RDKit caught stops it
    (:mod:`mmsa.features.interrupts`)."""
    parsed = FeatureSettings.from_dict(settings)
    features = []
    with watched_rdkit():
        for key in keys:
            features.append(featurize_molecule(key, parsed))
            raise_if_interrupted()
    return features
