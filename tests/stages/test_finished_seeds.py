"""The kept seeds of a finetune job are removed only when the job's outputs are all in place.

What happened in issue 32's confirmation: a second Snakemake on the same folder (started while
the first was still shutting down) had its job's rerun copy six kept seeds back; the first then
removed every output of its own failed run of that job, those six included. Had the job's end
removed the kept folder too, the only copy of those seeds would have gone with it.
"""

from __future__ import annotations

import pytest

from mmsa.stages.finished_seeds import FinishedSeeds


def written(folder, seed):
    outputs = [folder / f"seed-{seed}.json", folder / f"seed-{seed}.pt"]
    for path in outputs:
        path.write_text(f"{path.name} of seed {seed}")
    return outputs


def test_kept_seeds_stay_while_an_output_is_missing_and_go_once_all_are_in_place(tmp_path):
    kept = FinishedSeeds(tmp_path / "checkpoints", "digest-a")
    outputs = []
    for seed in (0, 1):
        seed_outputs = written(tmp_path, seed)
        kept.keep(seed, seed_outputs)
        outputs += seed_outputs
    outputs[0].unlink()  # removed by another process while the job ran

    with pytest.raises(RuntimeError, match=r"1 outputs of this job were removed .*seed-0\.json"):
        kept.clear(outputs)
    assert sorted(p.name for p in kept.folder.iterdir()) == ["seed-0", "seed-1"]

    assert kept.reuse(0, outputs[:2])  # the rerun copies it back from the kept folder
    assert outputs[0].read_text() == "seed-0.json of seed 0"
    kept.clear(outputs)
    assert not kept.folder.exists()


def test_a_seed_kept_under_another_digest_is_not_reused(tmp_path):
    outputs = written(tmp_path, 0)
    FinishedSeeds(tmp_path / "checkpoints", "digest-a").keep(0, outputs)
    for path in outputs:
        path.unlink()
    assert not FinishedSeeds(tmp_path / "checkpoints", "digest-b").reuse(0, outputs)
    assert not outputs[0].exists()
