"""Each rule's job size: declared for every rule, from its measurement, growing per attempt."""

import re

from mmsa.plan.job_resources import MEASURED, MIN_MEM_MB, MIN_RUNTIME_MIN, base_request, job_resources


def test_every_rule_declares_its_own_measured_resources(repo):
    for path in sorted((repo / "workflow" / "rules").glob("*.smk")):
        text = path.read_text()
        rules = re.findall(r"^(?:rule|checkpoint) (\w+):", text, flags=re.MULTILINE)
        declared = re.findall(r'\*\*job_resources\("(\w+)"\)', text)
        assert declared == rules, path.name
    names = [p.stem for p in (repo / "workflow" / "rules").glob("*.smk") if p.stem != "common"]
    assert sorted(MEASURED) == sorted(names)


def test_a_request_is_twice_the_measurement_above_the_floors():
    # finetune: 578 MB peak -> 1156 -> 1200 MB; 334.5 s -> 11.15 min, under the 30-minute floor
    assert base_request("finetune") == (1200, MIN_RUNTIME_MIN)
    assert base_request("fetch")[0] == MIN_MEM_MB  # 184 MB peak


def test_a_retry_asks_for_more_memory_and_time():
    resources = job_resources("featurize")
    mem, runtime = base_request("featurize")
    for attempt in (1, 2, 3):
        assert resources["mem_mb"]({}, attempt) == attempt * mem
        assert resources["runtime"]({}, attempt) == attempt * runtime
