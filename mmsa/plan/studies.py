"""A study: several runs of the pipeline, each a config overlay, paired seed by seed on one split.

A study file (``config/studies/*.yaml``) names a base config, what every run shares, and each
run's own overlay; a run that compares pretrained models names the run whose reference models
(``no-pretrain``, the forests) it is paired with. ``workflow/studies.smk`` runs every run as a
module of the main workflow, in ``runs/<run>/`` of one working folder, all in one Snakemake DAG
(so on a cluster or several cores the runs proceed side by side, and an interrupted study
resumes job by job); :mod:`mmsa.stages.study_report` pairs the results and writes the tables.

.. code-block:: yaml

    base: config/default.yaml      # relative to the repository
    score: valid                   # what the tables compare: valid (a screen) or test
    shared: {finetune: {seeds: 10}}
    runs:
      baseline: {config: {finetune: {models: [no-pretrain, ecfp-rf]}}}
      default-e5:
        references: baseline
        config: {finetune: {models: [mmsa]}, pretrain: {settings: {epochs: 5}}}

This module reads and checks the file and derives each run's config and result files; it
imports nothing heavy (the study's Snakefile reads it).
"""

from __future__ import annotations

import copy
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mmsa.plan.compared_models import REFERENCES
from mmsa.plan.config import ConfigError, deep_merge, validate_config, yaml_file

SCORES = ("valid", "test")
RUNS_DIR = "runs"


@dataclass(frozen=True)
class StudyRun:
    """One run: its validated config and its references."""

    name: str
    config: dict[str, Any]  # validated: the base config, the shared overlay, then the run's overlay
    references: str | None = None  # the run whose reference models this run's models are paired with


@dataclass(frozen=True)
class Study:
    """A study file, read and checked (see the module docstring)."""

    path: Path
    score: str
    runs: dict[str, StudyRun] = field(default_factory=dict)

    def config(self, run: str) -> dict[str, Any]:
        """The validated config of ``run`` (a copy: Snakemake's module and the workflow may change
        theirs)."""
        return copy.deepcopy(self.runs[run].config)

    def result_files(self, run: str) -> list[str]:
        """Every per-seed result file of ``run``, relative to the study's folder."""
        fine = self.config(run)["finetune"]
        return [
            f"{RUNS_DIR}/{run}/results/finetune/{d}/{m}/seed-{s}.json"
            for d in fine["datasets"]
            for m in fine["models"]
            for s in fine["seeds"]
        ]

    def split_files(self, run: str) -> list[str]:
        """The split table of every dataset ``run`` finetunes on, relative to the study's folder."""
        return [
            f"{RUNS_DIR}/{run}/results/splits/{d}.parquet" for d in self.config(run)["finetune"]["datasets"]
        ]


def _mapping(value: Any, where: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ConfigError(f"{where}: a mapping is expected, not {type(value).__name__}")
    return value


def _read(path: Path) -> tuple[dict[str, Any], dict[str, tuple[dict[str, Any], str | None]]]:
    """The file's top level and each run's overlay and references, their keys checked; the
    run configs are not built yet."""
    raw = _mapping(yaml_file(path), str(path))
    unknown = sorted(set(raw) - {"base", "score", "shared", "runs"})
    if unknown:
        raise ConfigError(f"{path}: unknown key(s) {unknown}; a study has base, score, shared and runs")
    entries = {}
    for name, entry in _mapping(raw.get("runs"), f"{path}: runs").items():
        entry = _mapping(entry, f"{path}: runs.{name}")
        extra = sorted(set(entry) - {"config", "references"})
        if extra:
            raise ConfigError(f"{path}: runs.{name}: unknown key(s) {extra}; a run has config and references")
        overlay = _mapping(entry.get("config"), f"{path}: runs.{name}.config")
        entries[str(name)] = (overlay, entry.get("references"))
    if not entries:
        raise ConfigError(f"{path}: no runs")
    for name, (_, references) in entries.items():
        if references is not None and not isinstance(references, str):
            raise ConfigError(f"{path}: runs.{name}.references: the name of one run, not {references!r}")
        if references is not None and references not in entries:
            raise ConfigError(f"{path}: runs.{name}.references: no run named {references!r}")
    return raw, entries


def declared_references(path: str | os.PathLike) -> dict[str, str]:
    """Each run's references run, as the study file at ``path`` declares it.

    Read without building the run configs, which check the files they name (a relative
    ``pretrain.weights`` is found from the study's working folder only): a finished study's
    scores can be paired from anywhere."""
    _, entries = _read(Path(path))
    return {name: references for name, (_, references) in entries.items() if references is not None}


def load_study(path: str | os.PathLike, repo: str | os.PathLike) -> Study:
    """The study file at ``path``, its base config resolved against ``repo``; a wrong file is a
    :class:`~mmsa.plan.config.ConfigError` naming the key."""
    path = Path(path)
    raw, entries = _read(path)
    base = Path(repo) / raw.get("base", "config/default.yaml")
    if not base.is_file():
        raise ConfigError(f"{path}: base {raw.get('base')!r}: no such config file in {repo}")
    score = raw.get("score", "test")
    if score not in SCORES:
        raise ConfigError(f"{path}: score {score!r}: use one of {', '.join(SCORES)}")
    shared = _mapping(raw.get("shared"), f"{path}: shared")
    base_config = deep_merge(yaml_file(base) or {}, shared)
    runs = {}
    for name, (overlay, references) in entries.items():
        try:  # every run's config is validated here, once
            config = validate_config(deep_merge(base_config, overlay))
        except ConfigError as err:
            raise ConfigError(f"{path}: run {name!r}: {err}") from None
        runs[name] = StudyRun(name, config, references)
    study = Study(path, score, runs)
    for run in runs.values():
        if run.references is None:
            continue
        mine, theirs = run.config, runs[run.references].config
        if not set(REFERENCES) & set(theirs["finetune"]["models"]):
            raise ConfigError(f"{path}: runs.{run.references} runs none of the references {list(REFERENCES)}")
        # paired on the same molecules, splits and finetuning inputs: mmsa and no-pretrain always
        # see the same settings
        for section, key in (("finetune", "datasets"), ("finetune", "seeds"), ("finetune", "settings")):
            if mine[section][key] != theirs[section][key]:
                raise ConfigError(f"{path}: runs.{run.name} and its references differ in {section}.{key}")
        if mine["featurize"] != theirs["featurize"]:
            raise ConfigError(f"{path}: runs.{run.name} and its references differ in featurize")
    return study
