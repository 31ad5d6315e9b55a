"""What a config asks for, before any job runs: the config loaded and validated, the datasets it
names and their shard counts, the models it compares, the part of it each rule reads, the
resources each rule's job requests, and the check of given pretrained weights.

The Snakefile's process imports this package to build the job graph, so nothing here loads
torch or RDKit (tests/workflow/test_workflow_imports.py validates every shipped config in a fresh
interpreter and checks)."""
