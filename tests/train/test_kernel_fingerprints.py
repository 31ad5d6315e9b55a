"""Under the project's default pin, this CPU computes the committed bytes, step by step.

``tests/train/kernel_fingerprints.json`` holds the digest of every float step from SMILES to the
``model.pt`` of a short fixed pretraining (:mod:`mmsa.stages.kernel_fingerprints`), recorded on
the CPU it names under the project's default ``cpu_kernels``. Every CPU is meant to give the same
bytes there, so this test fails on the first one that does not, naming the rows that differ (the
first names the library that parts ways). A deliberate change of features, model or training
changes the rows too: then write the file again with the command in the failure message, and
say so in the commit.
"""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from mmsa.plan.config import load_config
from mmsa.runtime.kernels import VARIABLES, cpu_flags

REPO = Path(__file__).resolve().parents[2]
REFERENCE = Path(__file__).with_name("kernel_fingerprints.json")
RUN = textwrap.dedent(
    """
    import json, sys
    from mmsa.plan.config import load_config
    from mmsa.runtime.kernels import pin_cpu_kernels
    config = load_config(sys.argv[1])
    pin_cpu_kernels(config["cpu_kernels"])  # before torch is imported
    from mmsa.stages.kernel_fingerprints import fingerprints
    print(json.dumps(fingerprints(config)))
    """
)


@pytest.mark.slow
def test_this_cpu_computes_the_committed_fingerprints_under_the_default_pin():
    reference = json.loads(REFERENCE.read_text())
    config_file = REPO / "config" / "default.yaml"
    assert reference["setting"] == load_config(config_file)["cpu_kernels"], "a reference of another pin"
    outer = {k: v for k, v in os.environ.items() if k not in VARIABLES}  # the pin alone decides
    done = subprocess.run(
        [sys.executable, "-c", RUN, str(config_file)], env=outer, capture_output=True, text=True, check=True
    )
    mine = json.loads(done.stdout.strip().splitlines()[-1])
    assert list(mine) == list(reference["digests"]), "the rows themselves changed"
    differ = [
        f"{k}: {v} here, {reference['digests'][k]} there"
        for k, v in mine.items()
        if v != reference["digests"][k]
    ]
    here = (cpu_flags() or ("an unknown CPU",))[0]
    assert not differ, (
        f"this CPU ({here}) computes other bytes than {reference['cpu']} under cpu_kernels "
        f"{reference['setting']!r}; rows that differ, in pipeline order:\n" + "\n".join(differ) + "\n"
        "If a change of code meant this, write the reference again: PYTHONPATH=$PWD python "
        "benchmarks/kernel_fingerprints.py --json tests/train/kernel_fingerprints.json"
    )
