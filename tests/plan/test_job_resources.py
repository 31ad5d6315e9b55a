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
