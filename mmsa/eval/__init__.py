"""Evaluation: dataset splits, masked losses and metrics, and the ECFP4 + random forest baseline.

Finetuning and the baseline share these modules so that both are split, trained on labelled
entries only, and scored in the same way. The package itself imports nothing: the config check
(``mmsa.plan.config``, in the Snakefile's process) reads ``split.check_fractions`` and must not load
the RDKit, scikit-learn or torch that the other modules need.
"""
