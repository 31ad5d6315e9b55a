"""The ``mmsa`` command: each pipeline stage on its own, for debugging and for use outside
Snakemake (``snakemake --cores N`` runs them all in order).

Every subcommand takes ``--config`` (a YAML file validated against the schema) and writes its
log to stderr; ``mmsa SUBCOMMAND --help`` describes each.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from mmsa import __version__
from mmsa.data.columns import SMILES, SMILES_OPTION
from mmsa.runtime.kernels import pin_cpu_kernels

DEFAULT_CONFIG = "config/default.yaml"
CLUSTER_THREADS = "worker processes (default 1; unused when the config sets dask.scheduler_address)"
NEIGHBOURS = 5  # nearest training molecules `mmsa predict` writes per molecule unless told otherwise
SMILES_FILE_HELP = "CSV file (or .csv.gz) with a SMILES column; other columns, labels included, are not read"
INTERRUPTED = 130  # the shell's status for a command ended by SIGINT (128 + 2)
Command = Callable[[argparse.Namespace, dict[str, Any]], None]


def load_cli_config(args: argparse.Namespace) -> dict[str, Any]:
    from mmsa.plan.config import load_config, validate_config

    if args.config:
        return load_config(args.config)
    if Path(DEFAULT_CONFIG).exists():
        return load_config(DEFAULT_CONFIG)
    return validate_config({})


def _cmd_datasets(args: argparse.Namespace, config: dict[str, Any]) -> None:
    from mmsa.data.registry import REGISTRY

    print(f"{'name':16} {'source':9} {'task type':15} {'rows':>9}  origin")
    for spec in REGISTRY.values():
        origin = spec.package or spec.url or ""
        rows = f"{spec.expected_rows:,}" if spec.expected_rows else "?"
        print(f"{spec.name:16} {spec.source:9} {spec.task_type:15} {rows:>9}  {origin}")


def _cmd_check_config(args: argparse.Namespace, config: dict[str, Any]) -> None:
    print(json.dumps(config, indent=2))


def _cmd_fetch(args: argparse.Namespace, config: dict[str, Any]) -> None:
    from mmsa.stages.fetch import fetch

    fetch(config, args.dataset, args.out)


def _cmd_standardize(args: argparse.Namespace, config: dict[str, Any]) -> None:
    from mmsa.plan.config_slices import placement
    from mmsa.stages.standardize import standardize

    where = placement(config, "standardize")  # dask.scheduler_address: on a cluster if set
    print(
        json.dumps(
            standardize(config, args.dataset, args.raw, args.out, args.rejects, threads=args.threads, **where)
        )
    )


def _cmd_shard(args: argparse.Namespace, config: dict[str, Any]) -> None:
    from mmsa.plan.config_slices import placement
    from mmsa.stages.shard import shard

    where = placement(config, "shard")  # dask.scheduler_address: on a cluster if set
    holdouts = dict(_holdout(text) for text in args.holdout)
    print(
        json.dumps(
            shard(
                config,
                args.dataset,
                args.standardized,
                args.out,
                args.rejects,
                threads=args.threads,
                holdouts=holdouts,
                **where,
            )
        )
    )


def _holdout(text: str) -> tuple[str, str]:
    """``DATASET=FOLDER`` of ``mmsa shard --holdout``."""
    name, sep, folder = text.partition("=")
    if not (sep and name and folder):
        raise SystemExit(f"--holdout {text!r}: expected DATASET=FOLDER (a standardized folder)")
    return name, folder


def _cmd_featurize(args: argparse.Namespace, config: dict[str, Any]) -> None:
    from mmsa.plan.config_slices import placement
    from mmsa.stages.featurize import featurize

    where = placement(config, "featurize")  # dask.scheduler_address: on a cluster if set
    print(
        json.dumps(featurize(config, args.shard, args.manifest, args.rejects, threads=args.threads, **where))
    )


def _cmd_embed(args: argparse.Namespace, config: dict[str, Any]) -> None:
    from mmsa.stages.command_files import checked_embed_files

    pin_cpu_kernels(config["cpu_kernels"])  # before torch is imported
    checked_embed_files(
        args.smiles, args.model, args.out, args.config
    )  # before torch: a wrong path costs no wait
    from mmsa.runtime.reproducible import configure_torch
    from mmsa.stages.predict import embed_file

    configure_torch(config["torch_threads"])
    print(
        json.dumps(
            embed_file(config, args.model, args.smiles, args.smiles_column, args.out, threads=args.threads)
        )
    )


def _cmd_predict(args: argparse.Namespace, config: dict[str, Any]) -> None:
    from mmsa.stages.command_files import checked_predict_files

    pin_cpu_kernels(config["cpu_kernels"])  # before torch is imported
    checked_predict_files(args.smiles, args.model, args.out, args.pretrained, args.config)  # before torch
    from mmsa.runtime.reproducible import configure_torch
    from mmsa.stages.predict import predict_file

    configure_torch(config["torch_threads"])
    print(
        json.dumps(
            predict_file(
                config,
                args.model,
                args.smiles,
                args.smiles_column,
                args.out,
                pretrained_path=args.pretrained,
                threads=args.threads,
                neighbours=args.neighbours,
            )
        )
    )


def _at_least(smallest: int) -> Callable[[str], int]:
    """An argparse type: a whole number no smaller than ``smallest`` (argparse prints the
    refusal as one line naming the option)."""

    def number(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if value < smallest:
            raise argparse.ArgumentTypeError(f"{value} is less than {smallest}")
        return value

    number.__name__ = f"a whole number of at least {smallest}"
    return number


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mmsa",
        description="Multi-modal molecular representation learning with structure awareness. "
        "Run the whole pipeline with `snakemake --cores N`; these subcommands run single stages.",
    )
    parser.add_argument("--version", action="version", version=f"mmsa {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, func: Command, help_text: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.add_argument("--config", help=f"YAML config file (default: {DEFAULT_CONFIG} if present)")
        p.set_defaults(func=func)
        return p

    add("datasets", _cmd_datasets, "List the datasets mmsa knows and where each comes from.")
    add(
        "check-config",
        _cmd_check_config,
        "Validate a config against the schema and print it with every default filled in.",
    )
    _add_data_stages(add)
    _add_model_commands(add)
    return parser


AddCommand = Callable[[str, Command, str], argparse.ArgumentParser]


def _add_data_stages(add: AddCommand) -> None:
    """One subcommand per data stage, with the files the workflow's rule gives it."""
    p = add("fetch", _cmd_fetch, "Download (or read locally) a dataset into a raw Parquet table.")
    p.add_argument("dataset", help="dataset name (see `mmsa datasets`)")
    p.add_argument("--out", required=True, help="output Parquet file")
    p = add(
        "standardize",
        _cmd_standardize,
        "Standardize raw rows into canonical molecule keys; invalid rows go to a rejects table.",
    )
    p.add_argument("dataset")
    p.add_argument("--raw", required=True, help="raw Parquet from `mmsa fetch`")
    p.add_argument("--out", required=True, help="output folder of part files")
    p.add_argument("--rejects", required=True, help="output rejects Parquet")
    p.add_argument("--threads", type=_at_least(1), default=1, help=CLUSTER_THREADS)
    p = add("shard", _cmd_shard, "Split standardized rows into shards by a stable hash of the key.")
    p.add_argument("dataset")
    p.add_argument("--standardized", required=True, help="folder from `mmsa standardize`")
    p.add_argument("--out", required=True, help="output folder of shard files")
    p.add_argument("--rejects", required=True, help="output rejects Parquet (duplicates)")
    p.add_argument("--threads", type=_at_least(1), default=1, help=CLUSTER_THREADS)
    p.add_argument(
        "--holdout",
        action="append",
        default=[],
        metavar="DATASET=FOLDER",
        help="leave out the molecules of this standardized finetuning dataset (repeatable), as the "
        "workflow does for the pretraining dataset",
    )
    p = add(
        "featurize",
        _cmd_featurize,
        "Compute graph, conformer and image features of one shard into the shared cache.",
    )
    p.add_argument("shard", help="a shard Parquet file from `mmsa shard`")
    p.add_argument("--manifest", required=True, help="output manifest Parquet")
    p.add_argument("--rejects", required=True, help="output rejects Parquet")
    p.add_argument("--threads", type=_at_least(1), default=1, help=CLUSTER_THREADS)


def _add_smiles_input(p: argparse.ArgumentParser) -> None:
    """The SMILES file that embed and predict read, and how it is featurized."""
    p.add_argument("smiles", help=SMILES_FILE_HELP)
    p.add_argument(SMILES_OPTION, default=SMILES, help=f"name of the SMILES column (default {SMILES})")
    p.add_argument("--threads", type=_at_least(1), default=1, help="featurization processes (default 1)")


def _add_model_commands(add: AddCommand) -> None:
    """Embeddings and predictions for new molecules from the workflow's models."""
    p = add(
        "embed",
        _cmd_embed,
        "Embed the molecules of a SMILES CSV with a pretrained model (Parquet: row, key, fused). "
        "Invalid rows go to <out>.rejects.csv (the output's full name + .rejects.csv) with reasons.",
    )
    _add_smiles_input(p)
    p.add_argument("--model", default="results/pretrain/model.pt", help="pretrained model.pt")
    p.add_argument("--out", required=True, help="output Parquet file")
    p = add(
        "predict",
        _cmd_predict,
        "Predict task values of the molecules of a SMILES CSV with a finetuned model "
        "(results/finetune/<dataset>/<model>/seed-<n>.pt). Invalid rows go to <out>.rejects.csv "
        "(the output's full name + .rejects.csv) with reasons.",
    )
    _add_smiles_input(p)
    p.add_argument("--model", required=True, help="finetuned weights (.pt)")
    p.add_argument(
        "--pretrained",
        default=None,
        help="pretrained model.pt; needed by `mmsa` and fused-space `mmsa-labels` models to place "
        "molecules among the training molecules",
    )
    p.add_argument("--out", required=True, help="output CSV file")
    p.add_argument(
        "--neighbours",
        type=_at_least(0),
        default=NEIGHBOURS,
        metavar="K",
        help=f"nearest training molecules per molecule in <out>.neighbours.csv (default {NEIGHBOURS}; "
        "0: none), with their labels and ECFP4 Tanimoto (and fused-space cosine for mmsa models); "
        "the output gains max_ecfp_tanimoto (and max_fused_cosine)",
    )


def _writes(args: argparse.Namespace, config: dict[str, Any]) -> dict[str, str]:
    """Where a command writes: the feature cache, the temporary folder and its outputs' folder."""
    places = {"the feature cache": config["cache_dir"], "the temporary folder": tempfile.gettempdir()}
    out = getattr(args, "out", None)
    if out is not None:
        places["the output folder"] = str(Path(out).parent)
    return places


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``mmsa`` console command."""
    from mmsa.plan.config import ConfigError
    from mmsa.runtime.errors import InputError
    from mmsa.runtime.logs import stage_logging
    from mmsa.runtime.write_failures import write_failure

    args = build_parser().parse_args(argv)
    try:
        config = load_cli_config(args)
    except ConfigError as err:
        print(f"mmsa {args.command}: {err}", file=sys.stderr)
        return 1
    with stage_logging():
        try:
            args.func(args, config)
        except KeyboardInterrupt:  # every output is written whole at its end, or not at all
            print(
                f"mmsa {args.command}: interrupted (Ctrl-C); no output of this run was written",
                file=sys.stderr,
            )
            return INTERRUPTED
        except InputError as err:
            print(f"mmsa {args.command}: {err}", file=sys.stderr)
            return 1
        except OSError as err:  # a file the system refused (permissions, a full disk)
            line = (
                f"{err.filename}: {err.strerror or err}"
                if err.filename
                else write_failure(err, _writes(args, config))
            )
            if line is None:
                raise
            print(f"mmsa {args.command}: {line}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
