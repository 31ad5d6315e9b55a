"""What every stage runs on: crash-safe files, stable hashes, worker pools, torch's processes
and device, CPU kernels and numerics, logs, progress and provenance. Nothing here knows about
molecules or models, and nothing here imports a higher layer of mmsa."""
