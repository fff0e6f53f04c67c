"""Protocol v3's runner end to end at a tiny size (one variant pair, one task, a few steps): its
records say protocol_version 3 and how the fine-tuning's subset and epochs were chosen, a second
call resumes with nothing to do, two processes give the numbers one gives, and the analysis reads
the folder."""
import json
import time

from compattn import evidence


def test_run_evidence_v3_records_its_version_and_resumes(tmp_path):
    kw = dict(steps={"pretrain": 3, "finetune": 2}, variants=["absolute", "none"], tasks=["word_order"],
              progress=False, device="cpu", protocol=3)
    first = evidence.run_evidence(tmp_path, "tiny", deadline=time.monotonic() - 1, **kw)
    assert first["done"] == [] and first["planned"] == 2 * 5 * (1 + 2)
    result = evidence.run_evidence(tmp_path, "tiny", parallel=2, **kw)
    assert result["complete"] and len(result["done"]) == result["planned"] == 30
    complete = json.loads((tmp_path / evidence.COMPLETE).read_text())
    assert complete["protocol_version"] == 3
    pre = json.loads((tmp_path / "pretrain-absolute-s4.json").read_text())
    ft = json.loads((tmp_path / "finetune-none-word_order-s401.json").read_text())
    assert pre["protocol_version"] == ft["protocol_version"] == 3 == ft["settings"]["protocol_version"]
    used = ft["settings"]["by_epochs"]
    assert used["epochs"] == 2 and used["examples"] <= 4000 and ft["train"]["steps"] == 2     # the test's budget
    assert "surface_cues" in ft
    again = evidence.run_evidence(tmp_path, "tiny", **kw)
    assert again["done"] == [] and again["complete"]
    # the same run made alone, in this process
    alone = tmp_path / "alone"
    evidence.execute(("pretrain", "none", 4, None), str(alone), "tiny", "cpu", kw["steps"], False, 1, 3)
    evidence.execute(("finetune", "none", 401, "word_order"), str(alone), "tiny", "cpu", kw["steps"], False, 1, 3)
    assert json.loads((alone / "finetune-none-word_order-s401.json").read_text())["final"]["test"]["items"] == \
        ft["final"]["test"]["items"]
    # the folder is v3's: v2 refuses it, naming the difference
    try:
        evidence.run_evidence(tmp_path, "tiny", **{**kw, "protocol": 2})
    except ValueError as err:
        assert "protocol_version" in str(err) and "delete it" in str(err)
    else:
        raise AssertionError("a v3 folder was resumed as v2")
    from compattn.sweep import load_records

    a = evidence.analyse(load_records(tmp_path))
    assert a["protocol"] == 3 and len(a["claims"]) == 9
    assert evidence.progress_of(tmp_path, "tiny", protocol=3)["recorded"] == 30
    assert "protocol v3" in evidence.banner(tmp_path)
