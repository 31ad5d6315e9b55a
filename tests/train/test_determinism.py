"""Same config, same bytes: pretraining and finetuning repeated in fresh processes on 2 threads.

Each run is a new interpreter (as two Snakemake jobs or two users would be), so nothing cached
in the process can make the runs agree; the model is large enough that its matrix products are
split between the two threads. Other CPUs are stood in for by the variables that make torch run
another instruction set's kernels (``ATEN_CPU_CAPABILITY`` and MKL's and oneDNN's): unpinned,
they change the weights; with ``cpu_kernels`` pinned, they do not.
"""

import hashlib
import json
import os
import subprocess
import sys
import textwrap

import pytest
import torch

from helpers import run_chain, toy_config
from mmsa.plan.config import deep_merge, validate_config
from mmsa.runtime.kernels import PINS, SETTING_VARIABLE, VARIABLES, check_cpu_kernels, kernel_env

SMILES = [
    "CC(=O)Oc1ccccc1C(=O)O",
    "CC(=O)Nc1ccc(O)cc1",
    "CN1CCC[C@H]1c1cccnc1",
    "CC(C)Cc1ccc(C(C)C(=O)O)cc1",
    "COc1ccc2[nH]cc(CCN)c2c1",
    "CN1C(=O)N(C)c2ncn(C)c2C1=O",
    "CC(C)NCC(O)COc1cccc2ccccc12",
    "O=C(O)c1ccccc1O",
    "Clc1ccc(cc1)C(c1ccccc1)N1CCN(CC1)CCOCC(=O)O",
    "CCN(CC)CCNC(=O)c1ccc(N)cc1",
    "OC1CCCCC1",
    "c1ccc2ccccc2c1",
    "NC(=O)c1cccnc1",
    "CC1=CC(=O)c2ccccc2C1=O",
    "COc1cc(C=O)ccc1O",
    "CC(N)Cc1ccccc1",
] * 2  # repeated molecules are de-duplicated; labels differ by position for finetuning
MODEL = {
    "gnn_layers": 3,
    "gnn_dim": 64,
    "image_layers": [1, 1],
    "image_width": 8,
    "geo_hidden": 32,
    "geo_filters": 32,
    "geo_interactions": 2,
    "embed_dim": 64,
    "num_anchors": 8,
    "hypergraph_k": 2,
    "graph_mask_rate": 0.15,
    "graph_drop_bond_rate": 0.1,
}
RUN = textwrap.dedent(
    """
    import hashlib, json, sys
    from mmsa.runtime.kernels import pin_cpu_kernels
    if len(sys.argv) > 4:
        pin_cpu_kernels(sys.argv[4])  # before torch is imported, as the Snakefile and the CLI do
    from mmsa.runtime.reproducible import configure_torch
    from mmsa.stages.pretrain import pretrain
    config, manifests, out = json.loads(sys.argv[1]), json.loads(sys.argv[2]), sys.argv[3]
    configure_torch(config["torch_threads"])
    pretrain(config, manifests, out, out + "/checkpoint.pt")
    print(hashlib.sha256(open(out + "/model.pt", "rb").read()).hexdigest())
    """
)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("determinism")
    (tmp / "toy.csv").write_text("smiles,y\n" + "".join(f"{s},{i % 2}\n" for i, s in enumerate(SMILES[:16])))
    base = toy_config(tmp, ["toy"], {"y": "y"}, shard_size=8)
    settings = {"epochs": 2, "batch_size": 8, "device": "cpu", "model": MODEL}
    config = validate_config(deep_merge(base, {"torch_threads": 2, "pretrain": {"settings": settings}}))
    run_chain(config, "toy", tmp / "out")
    manifests = sorted(str(p) for p in (tmp / "out" / "toy").glob("man-*.parquet"))
    return config, manifests, tmp


def pretrain_in_new_process(config, manifests, out, env=None, pin=None) -> str:
    """``model.pt``'s SHA-256; ``env`` is added to this environment, ``pin`` a cpu_kernels."""
    pinned = [pin] if pin else []
    done = subprocess.run(
        [sys.executable, "-c", RUN, json.dumps(config), json.dumps(manifests), str(out), *pinned],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, **(env or {})},
    )
    return done.stdout.strip().splitlines()[-1]


def native_capability() -> str:
    """The kernels torch picks on this CPU when no variable chooses them."""
    env = {k: v for k, v in os.environ.items() if k not in VARIABLES}
    code = "import torch; print(torch.backends.cpu.get_cpu_capability())"
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    return done.stdout.strip()


def test_two_pretraining_runs_on_two_threads_write_identical_weight_files(corpus):
    config, manifests, tmp = corpus
    first = pretrain_in_new_process(config, manifests, tmp / "a")
    second = pretrain_in_new_process(config, manifests, tmp / "b")
    assert first == second and len(first) == 64
    throughput = json.loads((tmp / "a" / "throughput.json").read_text())
    assert throughput["provenance"]["torch_threads"] == 2
    assert throughput["provenance"]["deterministic_algorithms"] is True
    losses = [(tmp / d / "losses.csv").read_text() for d in ("a", "b")]
    assert losses[0] == losses[1]


def test_two_finetuning_runs_write_identical_results(corpus):
    from mmsa.stages.finetune import finetune
    from mmsa.stages.split import split

    config, manifests, tmp = corpus
    d = tmp / "out" / "toy"
    config = validate_config(
        deep_merge(config, {"finetune": {"seeds": [0], "settings": {"epochs": 3, "split": "random"}}})
    )
    split(config, "toy", d / "shards", manifests, tmp / "split.parquet", tmp / "split.json")
    outputs = []
    for run in ("x", "y"):
        paths = [tmp / run / "seed-0.json"], [tmp / run / "seed-0.parquet"], [tmp / run / "seed-0.pt"]
        finetune(config, "toy", "no-pretrain", d / "shards", manifests, tmp / "split.parquet", *paths)
        outputs.append([hashlib.sha256(p[0].read_bytes()).hexdigest() for p in paths])
    assert outputs[0] == outputs[1]


@pytest.fixture(scope="module")
def outer_isas():
    """The instruction sets this CPU can stand in for: default and avx2, and avx512 if it has it."""
    native = native_capability()
    if native not in ("AVX2", "AVX512"):
        pytest.skip(f"this CPU runs {native} kernels: it cannot run the avx2 pin")
    return ["default", "avx2", *(["avx512"] if native == "AVX512" else [])]


def test_pinned_cpu_kernels_give_one_weight_file_under_every_outer_instruction_set(corpus, outer_isas):
    """The project's default pin overrides what the outer environment chose (as another CPU would
    choose), and without it those choices change the weights, so this test can fail."""
    config, manifests, tmp = corpus
    pin = validate_config({})["cpu_kernels"]
    pinned = {
        isa: pretrain_in_new_process(config, manifests, tmp / f"pin-{isa}", kernel_env(isa), pin=pin)
        for isa in outer_isas
    }
    native = {
        isa: pretrain_in_new_process(config, manifests, tmp / f"native-{isa}", {"ATEN_CPU_CAPABILITY": isa})
        for isa in ("default", "avx2")
    }
    print("pinned", pinned, "native", native)
    assert len(set(pinned.values())) == 1
    assert len(set(native.values())) == 2
    for isa in outer_isas:
        provenance = json.loads((tmp / f"pin-{isa}" / "throughput.json").read_text())["provenance"]
        assert provenance["cpu_kernels"] == {
            "setting": pin,
            "env": {**PINS[pin], "DNNL_MAX_CPU_ISA": PINS[pin]["ONEDNN_MAX_CPU_ISA"]},
            "capability": PINS[pin]["ATEN_CPU_CAPABILITY"].upper(),
        }


def test_a_cpu_without_the_pinned_kernels_stops_the_run(monkeypatch):
    """torch falls back to the kernels the CPU has; a run must not go on with them. Here the
    pin names a set other than the one this process runs (the mismatch such a CPU shows)."""
    other = "default" if torch.backends.cpu.get_cpu_capability() != "DEFAULT" else "avx2"
    monkeypatch.setenv(SETTING_VARIABLE, other)
    with pytest.raises(RuntimeError, match=f"cpu_kernels '{other}' needs {other.upper()} kernels"):
        check_cpu_kernels()
