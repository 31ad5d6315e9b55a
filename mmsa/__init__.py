"""mmsa: multi-modal molecular representation learning with structure awareness.

The library behind the Snakemake pipeline: datasets, featurization (graph, conformer,
image), the MMSA model, pretraining, finetuning and reporting. Importable without Snakemake.
"""

__version__ = "0.1.0"
