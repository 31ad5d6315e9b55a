"""Evaluation: dataset splits, masked losses and metrics, the ECFP4 + random forest baseline,
and the paired comparisons of compared models.

Finetuning and the baseline share these modules so that both are split, trained on labelled
entries only, and scored in the same way.
"""
