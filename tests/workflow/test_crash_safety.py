"""Kill -9 at random moments of featurize, of pretraining and of a finetune job, then a rerun: the
same bytes as an uninterrupted run (the harness is ``benchmarks/kill_rerun.py``; this runs it small)."""

import importlib.util

import pytest

pytestmark = pytest.mark.slow


def _harness(repo):
    spec = importlib.util.spec_from_file_location("kill_rerun", repo / "benchmarks" / "kill_rerun.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_killed_stages_rerun_to_the_uninterrupted_outputs(tmp_path, repo):
    harness = _harness(repo)
    results = harness.kill_rerun_report(tmp_path, kills=3, seed=0)
    print(harness.format_report(results))
    for result in results:
        assert result["matching"] == result["tried"], result["runs"]
        assert result["killed"] >= 1, result["runs"]  # at least one kill landed inside the work
