"""The heads a finetuned GIN can carry beside its embedding, by name: the one table that
finetuning (which head to build), saving and loading (which metadata) consult.

What each head reads and which settings it takes is declared in the planning layer
(:data:`mmsa.plan.compared_models.HEADS`, torch-free for the Snakefile); its network is here,
registered under the same name. A head is a ``torch.nn.Module`` whose ``forward`` takes training
positions and returns their context (width ``out_dim``), with:

* ``name`` and ``meta_key`` (class attributes): its plan entry, and its key in a saved model's
  metadata;
* ``build(inputs, settings)`` (class method): the head over a seed's training molecules
  (:class:`~mmsa.models.head_inputs.HeadInputs`);
* ``new_context(fused, keys, device)``: the context of molecules outside the training set;
  ``reads_fused``: whether that needs their pretrained fused embeddings;
* ``saved_meta()`` and ``from_saved(meta, state)`` (class method): its metadata in a saved model,
  and the head rebuilt from it and the model's state dict.

The plain linear head (``"linear"``) has no module.
"""

from __future__ import annotations

from mmsa.models.neighbour_labels import NeighbourLabels
from mmsa.models.structure_context import StructureContext

Head = StructureContext | NeighbourLabels
HEAD_TYPES: dict[str, type[Head]] = {cls.name: cls for cls in (StructureContext, NeighbourLabels)}
