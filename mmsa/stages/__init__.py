"""The pipeline's stages, one module per Snakemake rule, each a plain function of (validated
config, paths) called by the rule's script (``workflow/scripts/<rule>.py``) and by the ``mmsa``
command; beside them the commands on new SMILES (``predict``, ``prepare_smiles``), pretraining
in several processes (``torchrun``), the data stages in one process (``data_stages``) and what
every stage builds from a config (``inputs``).

The model stages import torch and the model code; the data stages do not load them.
"""
