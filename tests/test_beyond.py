"""Beyond the paper: the length-generalisation data path, the records, resume and tables."""
import json

import pytest
import torch

from compattn import beyond
from compattn import sweep as S
from compattn.records import validate_record
from compattn.train import train_probe

CLS, SEP, PAD = 2, 3, 0


def test_held_out_split_takes_each_documents_tail():
    heads, tails = beyond.held_out_split([list(range(100)), list(range(40))], fraction=0.1)
    assert heads[0] == list(range(90)) and tails[0] == list(range(90, 100))
    assert heads[1] + tails[1] == list(range(40)) and len(tails[1]) == 4


def test_evaluation_spans_are_complete_and_capped():
    spans = beyond.evaluation_spans([list(range(25)), list(range(100, 110))], span=10, limit=3)
    assert spans.tolist() == [list(range(10)), list(range(10, 20)), list(range(100, 110))]
    with pytest.raises(ValueError, match="no piece of 50 tokens"):
        beyond.evaluation_spans([list(range(25))], span=50, limit=3)


@pytest.mark.parametrize("length", [8, 12, 32])
def test_blocks_at_every_length_score_the_same_targets(length):
    torch.manual_seed(0)
    inputs = torch.randint(10, 50, (3, 30))
    labels = torch.where(torch.rand(3, 30) < 0.3, inputs, torch.full_like(inputs, -100))
    x, y = beyond.blocks_at(inputs, labels, length, CLS, SEP, PAD)
    assert x.shape[1] == length and (x[:, 0] == CLS).all()
    # the same multiset of (token, label) pairs survives, in order, with nothing added
    assert sorted(y[y != -100].tolist()) == sorted(labels[labels != -100].tolist())
    real = (x != CLS) & (x != SEP) & (x != PAD)
    assert real.sum() == inputs.numel()
    assert (y[~real] == -100).all()


def test_length_run_writes_a_valid_record_and_resumes(tmp_path):
    record = beyond.length_run("composite", "tiny", steps=3, out=tmp_path, progress=False)
    validate_record(record)
    by_length = record["final"]["by_length"]
    assert list(by_length) == ["32", "64", "128"]
    assert len({v["targets"] for v in by_length.values()}) == 1       # identical targets at every length
    assert record["encoder"]["max_len"] == 128 and record["train_length"] == 32
    assert not (tmp_path / "length-composite-s0.pt").exists()           # the checkpoint is removed at the end
    saved = json.loads((tmp_path / "length-composite-s0.json").read_text())
    assert saved["final"] == json.loads(json.dumps(record["final"]))


def test_absolute_positions_run_past_the_training_length_only_with_room():
    record = beyond.length_run("absolute", "tiny", steps=2, progress=False, eval_lengths=(32, 64))
    assert set(record["final"]["by_length"]) == {"32", "64"}
    probe = train_probe("absolute", "copy_offset", train_length=16, test_lengths=(16, 32), steps=2, n_train=64,
                        n_test=32, progress=False)
    validate_record(probe)
    assert probe["final"]["accuracy"]["32"] is None                    # max_len is the training length
    assert probe["final"]["accuracy"]["16"] is not None


def test_run_beyond_resumes_marks_complete_and_tables(tmp_path, monkeypatch):
    from dataclasses import replace

    from compattn import config

    tiny = config.PROFILES["tiny"]
    monkeypatch.setitem(config.PROFILES, "tiny", replace(tiny, beyond={**tiny.beyond, "steps": 2,
                                                                        "probe_steps": 2}))
    monkeypatch.setitem(beyond.PROBE_LENGTHS, "copy_offset", (16, (16, 32)))
    out = tmp_path / "beyond-tiny"
    done = beyond.run_beyond(["none", "alibi"], ["copy_offset"], "tiny", out=out, progress=False)
    assert done == ["length-none-s0", "length-alibi-s0", "probe-copy_offset-none-s0", "probe-copy_offset-alibi-s0"]
    assert beyond.run_beyond(["none", "alibi"], ["copy_offset"], "tiny", out=out, progress=False) == []
    assert S.best_available(tmp_path, "beyond") == out
    records = S.load_records(out)
    lengths = beyond.length_table(records)
    assert lengths["train_length"] == 32 and set(lengths["loss"]) == {"none", "alibi"}
    probes = beyond.probe_table(records)
    assert set(probes["copy_offset"]) == {"none", "alibi"} and set(probes["copy_offset"]["none"]) == {16, 32}


def test_position_free_baselines_say_what_each_probe_tests():
    from compattn.data.probes import make_probe, position_free_baseline

    score = {}
    for probe, length in (("copy_offset", 32), ("local_ngram", 32), ("brackets", 32), ("assoc_recall", 18)):
        ids, labels, _ = make_probe(probe, 400, length, seed=5)
        score[probe] = position_free_baseline(probe, ids, labels)
    assert score["brackets"] == 1.0                      # counting solves it
    assert 0.4 < score["local_ngram"] < 0.6              # a bag says nothing
    assert score["assoc_recall"] > 0.2                   # well above 1/8: not position-free
    assert score["copy_offset"] > 1 / 16


def test_probe_records_get_their_position_free_row():
    record = train_probe("none", "brackets", train_length=16, test_lengths=(16,), steps=1, n_train=32,
                         n_test=64, progress=False)
    table = beyond.position_free_table([record])
    assert table == {"brackets": {16: 1.0}}


def test_kernel_reach_counts_clipped_offsets():
    import math

    from compattn.plots import kernel_attention, kernel_reach

    T = 128
    uniform = kernel_reach([0.0] * 17, T)
    assert uniform["reach"] == pytest.approx((T * T - 1) / (3 * T))
    window = kernel_reach([0.0] * 17, T, clip=False)
    assert window["beyond"] == 0 and window["reach"] < 8 * 9 / 17 + 1e-9
    peaked = kernel_attention([0.0] * 8 + [3.0] + [0.0] * 8, T)[64]
    far = sum(w for j, w in enumerate(peaked) if abs(j - 64) > 8)
    assert far == pytest.approx(111 / (math.exp(3) + 16 + 111))


def test_length_records_say_whether_they_left_the_plateau():
    record = beyond.length_run("none", "tiny", steps=2, progress=False, eval_lengths=(32,))
    assert set(record["plateau"]) >= {"unigram_loss", "left_at", "left_in_time"}
    assert beyond.off_plateau([record]) == {"none": record["plateau"]["left_in_time"]}
