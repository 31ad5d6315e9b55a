"""Datasets: where they come from, how rows are standardized, and how they are sharded."""
