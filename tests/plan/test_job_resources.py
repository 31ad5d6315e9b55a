"""Each rule's job size: declared for every rule, from its measurement, growing per attempt."""

import re

import pytest

from mmsa.plan.job_resources import MARGIN, MEASURED, MIN_MEM_MB, MIN_RUNTIME_MIN, base_request, job_resources


def test_every_rule_declares_its_own_measured_resources(repo):
    for path in sorted((repo / "workflow" / "rules").glob("*.smk")):
        text = path.read_text()
        rules = re.findall(r"^(?:rule|checkpoint) (\w+):", text, flags=re.MULTILINE)
        declared = re.findall(r'\*\*job_resources\("(\w+)"\)', text)
        assert declared == rules, path.name
    names = [p.stem for p in (repo / "workflow" / "rules").glob("*.smk") if p.stem != "common"]
    assert sorted(MEASURED) == sorted(names)


@pytest.mark.parametrize("rule", sorted(MEASURED))
def test_a_request_covers_the_margin_over_its_measurement_and_the_floors_and_little_more(rule):
    """Whatever the measurements are: a job is never sized below MARGIN times what its rule was
    seen to use, nor below the floors, and the rounding adds less than one step (100 MB, 1 min)."""
    mem_mb, minutes = base_request(rule)
    peak_mb, wall_s = MEASURED[rule].peak_mb, MEASURED[rule].wall_s
    assert mem_mb >= MARGIN * peak_mb and mem_mb >= MIN_MEM_MB and mem_mb % 100 == 0
    assert mem_mb - max(MIN_MEM_MB, MARGIN * peak_mb) < 100
    assert minutes * 60 >= MARGIN * wall_s and minutes >= MIN_RUNTIME_MIN
    assert minutes - max(MIN_RUNTIME_MIN, MARGIN * wall_s / 60) < 1


def test_a_retry_asks_for_more_memory_and_time():
    resources = job_resources("featurize")
    mem, runtime = base_request("featurize")
    for attempt in (1, 2, 3):
        assert resources["mem_mb"]({}, attempt) == attempt * mem
        assert resources["runtime"]({}, attempt) == attempt * runtime


def test_a_site_s_requests_come_from_its_own_run_s_largest_jobs(repo, tmp_path, capsys):
    """benchmarks/job_resources.py: each rule's largest peak and longest job over every run given,
    and a set-resources block with the committed margin and floors."""
    import importlib.util
    import sys

    import yaml

    header = "s\th:m:s\tmax_rss\tmax_vms\tmax_uss\tmax_pss\tio_in\tio_out\tmean_load\tcpu_time\n"
    jobs = {"a/benchmarks/pretrain/x.tsv": (3000.0, 700.0), "b/benchmarks/pretrain/x.tsv": (60.0, 2500.0)}
    jobs["a/benchmarks/fetch/bbbp.tsv"] = (2.0, 150.0)
    for path, (wall, rss) in jobs.items():
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text(header + f"{wall}\t0:00:01\t{rss}\t0\t0\t0\t0\t0\t0\t1\n")
    sys.path.insert(0, str(repo / "benchmarks"))
    try:
        spec = importlib.util.spec_from_file_location(
            "job_resources_script", repo / "benchmarks" / "job_resources.py"
        )
        script = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(script)
        script.main([str(tmp_path / "a" / "benchmarks"), str(tmp_path / "b")])
    finally:
        sys.path.remove(str(repo / "benchmarks"))
    out = capsys.readouterr().out
    block = yaml.safe_load(out[out.index("set-resources:") :])["set-resources"]
    # pretrain: 2500 MB (run b) and 3000 s (run a) -> 2 x, rounded up; fetch: the floors
    assert block == {
        "pretrain": {"mem_mb": 5000, "runtime": 100},
        "fetch": {"mem_mb": MIN_MEM_MB, "runtime": MIN_RUNTIME_MIN},
    }
