"""Protocol v3 (``compattn.protocol.PROTOCOL_V3``): its plan, its fine-tuning by epochs over a
capped subset, and its verdict (``evidence.analyse_v3``) on synthetic records.  The runner end to
end at a tiny size: checks/test_evidence_v3_run.py."""
import math

import numpy as np
import pytest

from compattn import evidence, stats
from compattn.protocol import FINETUNE_V3, PROTOCOL_V3, PROTOCOL_V4, epoch_steps, finetune_subset
from test_evidence import assert_runs_in_order

V3 = PROTOCOL_V3


# --- the plan -------------------------------------------------------------------------------------
def test_the_v3_plan_has_its_variants_seeds_and_tasks():
    runs = evidence.plan("tiny", protocol=3)
    n_var, n_pre = len(V3["variants"]), len(V3["seeds"]["pretrain"])
    n_fine, n_task = len(V3["seeds"]["finetune_per_pretrain"]), len(V3["tasks"])
    assert (n_var, n_pre, n_fine, n_task) == (9, 5, 2, 5)
    assert sum(r[0] == "pretrain" for r in runs) == 9 * 5
    assert sum(r[0] == "finetune" for r in runs) == 9 * 5 * 2 * 5
    assert {r[1] for r in runs} == set(V3["variants"]) and "wn_sense_match" not in {r[3] for r in runs}
    assert {r[2] for r in runs if r[0] == "finetune"} == {100 * p + f for p in range(5) for f in range(2)}
    assert_runs_in_order(runs)


def test_the_v2_plan_and_its_runs_are_unchanged():
    import compattn

    runs = evidence.plan("tiny")
    assert runs == evidence.plan("tiny", protocol=2)
    p = evidence.PROTOCOL
    assert len(runs) == len(compattn.variants()) * 3 * (1 + 2 * len(p["tasks"]))
    assert evidence.run_options("pretrain", 2) == {} and evidence.run_options("finetune", 2) == {}
    assert evidence.evidence_dir("cpu").name == "evidence-cpu"
    assert evidence.evidence_dir("cpu", protocol=3).name == "evidence-v3-cpu"
    with pytest.raises(ValueError, match="protocol"):
        evidence.plan("tiny", protocol=5)


def test_v2_fine_tuning_settings_carry_nothing_new_and_v3_says_what_it_used():
    from compattn.train import finetune_settings, pretrain_settings

    v2 = finetune_settings("none", "word_order", None, "tiny", 101)
    assert "by_epochs" not in v2 and "protocol_version" not in v2
    assert "protocol_version" not in pretrain_settings("none", "tiny", 1)
    assert pretrain_settings("none", "tiny", 1, **evidence.run_options("pretrain", 3))["protocol_version"] == 3
    v3 = finetune_settings("none", "word_order", None, "tiny", 101, **evidence.run_options("finetune", 3))
    assert v3["protocol_version"] == 3
    used = v3["by_epochs"]
    assert used["epochs"] == 2 and used["examples"] == min(4000, used["of"])
    assert (v3["train"]["batch_size"], v3["train"]["lr"], v3["train"]["warmup"]) == (32, 1e-3, 0.1)


# --- protocol v4: v3 at the budget curve's 16,000 pre-training steps -------------------------------
def test_v4_is_v3_with_only_the_pre_training_budget_changed():
    from compattn.protocol import PROTOCOLS
    from compattn.train import finetune_settings, pretrain_settings

    kept = set(V3) - {"version", "curve", "runs"}
    assert {k: PROTOCOL_V4[k] for k in kept} == {k: V3[k] for k in kept}
    assert PROTOCOL_V4["version"] == 4 and PROTOCOLS[4] is PROTOCOL_V4
    assert "after seeing" in PROTOCOL_V4["decided"] and f"{PROTOCOL_V4['pretrain_steps']:,}" in PROTOCOL_V4["differs"]
    # the budget curve's answer, from its committed records
    from compattn import search
    from compattn.records import results_dir

    points = search.curve_points(search.load(results_dir() / "search-cpu"), search.load(results_dir() / "curve-cpu"))
    assert PROTOCOL_V4["pretrain_steps"] == search.curve_answer(points)["reads_order_at"] == 16000
    assert evidence.plan("tiny", protocol=4) == evidence.plan("tiny", protocol=3)
    assert evidence.protocol_steps(4) == {"pretrain": 16000} and evidence.protocol_steps(3) == {}
    assert evidence._planned_steps(("pretrain", "none", 0, None), "cpu", 4) == 16000
    assert evidence._planned_steps(("pretrain", "none", 0, None), "cpu", 3) == 2000
    assert evidence._planned_steps(("finetune", "none", 1, "word_order"), "tiny", 4) == \
        evidence._planned_steps(("finetune", "none", 1, "word_order"), "tiny", 3)
    assert evidence.evidence_dir("cpu", protocol=4).name == "evidence-v4-cpu"
    assert pretrain_settings("none", "tiny", 1, **evidence.run_options("pretrain", 4))["protocol_version"] == 4
    v4 = finetune_settings("none", "word_order", None, "tiny", 101, **evidence.run_options("finetune", 4))
    v3 = finetune_settings("none", "word_order", None, "tiny", 101, **evidence.run_options("finetune", 3))
    assert v4["protocol_version"] == 4 and v4["by_epochs"] == v3["by_epochs"] and v4["train"] == v3["train"]


def test_the_v4_runner_asks_for_16000_pre_training_steps(tmp_path):
    """A v4 record made at another budget is refused, naming the steps (the runner folds the
    protocol's budget into the plan; nothing is trained)."""
    from compattn.train import pretrain_settings, write_record
    from test_sweep import _fake_record

    write_record(_fake_record("pretrain-none-s0", pretrain_settings("none", "tiny", 0, steps=3,
                                                                     **evidence.run_options("pretrain", 4))),
                 tmp_path / "pretrain-none-s0.json")
    with pytest.raises(ValueError, match=r"pretrain-none-s0.json was made with other settings .*3 -> 16000"):
        evidence.run_evidence(tmp_path, "tiny", variants=["none"], tasks=["word_order"], progress=False,
                              device="cpu", protocol=4)
    assert not list(tmp_path.glob("*.pt"))


def test_v4_records_are_judged_by_v3s_rules():
    records = v3_records(gain={"composite": 0.15})
    for r in records:
        r["protocol_version"] = 4
    a, b = evidence.analyse(records), evidence.analyse(v3_records(gain={"composite": 0.15}))
    assert a["protocol"] == 4 and b["protocol"] == 3
    assert [(c["x"], c["y"], c["verdict"], c["low"]) for c in a["claims"]] == \
        [(c["x"], c["y"], c["verdict"], c["low"]) for c in b["claims"]]
    with pytest.raises(ValueError, match="protocol 3 or 4"):
        evidence.analyse_v3(records, protocol=2)


# --- fine-tuning by epochs ------------------------------------------------------------------------
def test_the_recipe_numbers_are_the_protocols_text():
    text = V3["recipe"]["finetune"]
    assert f"{FINETUNE_V3['epochs']} epochs" in text and f"{FINETUNE_V3['max_examples']:,}" in text
    assert f"batch {FINETUNE_V3['batch_size']}" in text
    assert f"AdamW {FINETUNE_V3['lr']:.0e}".replace("e-0", "e-") in text
    assert f"{100 * FINETUNE_V3['warmup']:.0f} % warm-up" in text


def test_the_finetune_subset_is_capped_fixed_and_deterministic():
    rows = finetune_subset("wn_pos", 10_000, 4000)
    assert len(rows) == 4000 == len(set(rows)) and rows == sorted(rows) and 0 <= rows[0] and rows[-1] < 10_000
    assert finetune_subset("wn_pos", 10_000, 4000) == rows                   # deterministic
    assert finetune_subset("vader_sent", 10_000, 4000) != rows                # drawn per task
    assert finetune_subset("wn_pos", 3000, 4000) == list(range(3000))          # a small task: every row
    from compattn.train import epoch_plan, finetune_settings

    assert epoch_plan("wn_pos", 10_000, 2, 4000, 32)["examples"] == 4000
    # the same rows for every variant and seed: the settings name them by the same hash
    made = {finetune_settings(v, "word_order", None, "tiny", s,
                              **evidence.run_options("finetune", 3))["by_epochs"]["rows_sha256"]
            for v in ("none", "absolute", "composite") for s in (0, 101, 401)}
    assert len(made) == 1


def test_v3_fine_tuning_runs_two_epochs_of_the_subset_at_batch_32():
    import torch

    from compattn.train import epoch_batch, epoch_plan

    assert epoch_plan("wn_pos", 50_000, 2, 4000, 32)["steps"] == 250 == epoch_steps(4000, 2, 32)
    assert epoch_plan("word_order", 3000, 2, 4000, 32)["steps"] == 2 * math.ceil(3000 / 32)
    rows = torch.tensor(finetune_subset("wn_pos", 1000, 100))
    steps = epoch_steps(len(rows), 2, 32)
    seen = torch.cat([epoch_batch(rows, step, 101, 32) for step in range(steps)])
    assert len(seen) == 2 * len(rows)
    assert (torch.bincount(seen, minlength=1000)[rows] == 2).all()            # every row exactly twice
    first, second = seen[:len(rows)], seen[len(rows):]
    assert sorted(first.tolist()) == sorted(second.tolist()) == rows.tolist()  # each epoch: every row once
    assert not torch.equal(first, second)                                       # in a new order


# --- the verdict ----------------------------------------------------------------------------------
def v3_records(gain=None, stuck=(), gap=0.2, absolute_loss=4.9, cue_advantage=0.0, n_items=400,
               tasks=("wn_pos", "word_order"), seed=0):
    """Records as the v3 runner writes them: per-variant accuracies ``0.6 + gain``, a per-seed
    wobble shared by all variants (paired seeds), ``stuck``: (variant, seed) pairs that did not
    leave the plateau.  ``cue_advantage=None``: the build measured no surface cues."""
    from compattn.train import encode_items

    rng = np.random.default_rng(seed)
    gain = gain or {}
    golds = {t: rng.integers(0, 2 if t == "word_order" else 4, n_items) for t in tasks}
    if "wn_pos" in golds:
        golds["wn_pos"][: int(0.7 * n_items)] = 0                  # unbalanced: balanced accuracy
    wobble = rng.normal(0, 0.01, len(V3["seeds"]["pretrain"]))
    cues = None if cue_advantage is None else {"chance": 0.5, "best": "last_token",
                                               "best_accuracy": 0.5 + cue_advantage,
                                               "advantage": cue_advantage}
    records = []
    for v in V3["variants"]:
        for p in V3["seeds"]["pretrain"]:
            left = None if (v, p) in stuck else 300
            records.append({"kind": "pretrain", "variant": v, "seed": p, "protocol_version": 3,
                            "train": {"steps": 2000},
                            "final": {"loss": (absolute_loss if v == "absolute" else 5.0) + 0.001 * p,
                                      "order_gap": 0.0 if v == "none" else gap},
                            "plateau": {"left_at": left, "left_in_time": left is not None}})
            for f in V3["seeds"]["finetune_per_pretrain"]:
                for t in tasks:
                    gold = golds[t]
                    right = rng.random(n_items) < 0.6 + gain.get(v, 0.0) + wobble[p]
                    pred = np.where(right, gold, (gold + 1) % (gold.max() + 1))
                    records.append({"kind": "finetune", "variant": v, "task": t, "protocol_version": 3,
                                    "seed": evidence.finetune_seed(p, f),
                                    **({"surface_cues": cues} if t == "word_order" else {}),
                                    "final": {"test": {"items": {"pred": encode_items(pred),
                                                                 "gold": encode_items(gold)}}}})
    return records


def verdicts(a):
    return {(c["x"], c["y"]): c for c in a["claims"]}


def test_v3_judges_nine_claims_at_the_family_level():
    a = evidence.analyse(v3_records(gain={"composite": 0.15}))
    assert a["protocol"] == 3 and len(a["claims"]) == V3["verdict"]["claims"] == 9
    assert a["level"] == pytest.approx(1 - 0.05 / 9) == stats.family_level(9)
    c = verdicts(a)[("composite", "absolute")]
    assert all(row["level"] == a["level"] for row in a["claims"])
    # the interval is the seed t-interval at that level, on the seeds off the plateau
    b = verdicts(evidence.analyse_v3(v3_records(gain={"composite": 0.15})))[("composite", "absolute")]
    assert (c["low"], c["high"]) == (b["low"], b["high"])
    half = (c["high"] - c["low"]) / 2
    sd = np.std(c["per_seed"], ddof=1)
    assert half == pytest.approx(stats.t_quantile(stats.family_level(9), 4) * sd / np.sqrt(5))


def test_v3_supports_a_planted_gain_when_the_gate_passes():
    a = evidence.analyse(v3_records(gain={"composite": 0.15}))
    assert a["gate"]["passed"] and a["gate"]["why"] == ""
    assert set(a["informative"]) == {"wn_pos", "word_order"} and a["excluded"] == {}
    got = verdicts(a)
    assert got[("composite", "absolute")]["verdict"] == "supports"
    assert got[("composite", "absolute")]["n_seeds"] == 5
    assert got[("composite", "none")]["verdict"] == "supports"


def test_v3_does_not_support_a_claim_without_a_difference():
    got = verdicts(evidence.analyse(v3_records(gain={"composite": 0.15})))
    for pair in [("lightconv", "absolute"), ("dynconv", "absolute"), ("composite_key", "absolute")]:
        assert got[pair]["verdict"] != "supports"
        assert got[pair]["low"] < 0.005 < got[pair]["high"] or got[pair]["verdict"] == "contradicts"


def test_v3_gate_fails_without_an_order_gap_and_no_absolute_claim_is_judged():
    a = evidence.analyse(v3_records(gain={"composite": 0.15}, gap=0.003))
    assert not a["gate"]["passed"] and not a["gate"]["order_ok"] and a["gate"]["loss_ok"]
    for c in a["claims"]:
        if "absolute" in (c["x"], c["y"]):
            assert c["verdict"] == "not established at this budget" and c["diff"] is None
            assert "gate failed" in c["why"] and "order gap 0.003" in c["why"]
    assert verdicts(a)[("composite", "none")]["verdict"] == "supports"          # no absolute in it


def test_v3_gate_needs_absolute_below_none_in_loss_too():
    a = evidence.analyse(v3_records(gain={"composite": 0.15}, gap=0.3, absolute_loss=5.2))
    assert a["gate"]["order_ok"] and not a["gate"]["loss_ok"] and not a["gate"]["passed"]
    c = verdicts(a)[("composite", "absolute")]
    assert c["verdict"] == "not established at this budget" and "not below none's" in c["why"]


def test_v3_needs_four_seeds_off_the_plateau_for_both_variants():
    a = evidence.analyse(v3_records(gain={"composite": 0.15, "dynconv": 0.15},
                                    stuck={("dynconv", 0), ("dynconv", 1), ("composite", 4)}))
    got = verdicts(a)
    assert got[("dynconv", "absolute")]["verdict"] == "not established at this budget"
    assert got[("dynconv", "absolute")]["n_seeds"] == 3 and "needs 4" in got[("dynconv", "absolute")]["why"]
    assert got[("composite", "absolute")]["n_seeds"] == 4 and got[("composite", "absolute")]["seeds"] == [0, 1, 2, 3]
    assert got[("composite", "absolute")]["verdict"] == "supports"
    assert a["off_plateau"]["dynconv"] == [2, 3, 4]


@pytest.mark.parametrize("advantage, why", [(0.2, "beats chance by 20.0 points"),
                                            (None, "surface cues not measured by this data build")])
def test_v3_leaves_word_order_out_when_its_surface_cue_is_not_bounded(advantage, why):
    a = evidence.analyse(v3_records(gain={"composite": 0.15}, cue_advantage=advantage))
    assert "word_order" not in a["informative"] and why in a["excluded"]["word_order"]
    assert "wn_pos" in a["informative"]
    kept = evidence.analyse(v3_records(gain={"composite": 0.15}, cue_advantage=0.04))
    assert "word_order" in kept["informative"]
    # a caller may pass the build's measure where the records carry none
    given = evidence.analyse(v3_records(cue_advantage=None), cues={"word_order": {"advantage": 0.01,
                                                                                   "best": "length"}})
    assert "word_order" not in given["excluded"]


def test_v3_uninformative_tasks_are_left_out_with_their_reason():
    a = evidence.analyse(v3_records(gain={v: -0.1 for v in V3["variants"]}))
    assert "word_order" not in a["informative"] and "uninformative" in a["excluded"]["word_order"]


def test_analyse_follows_the_records_protocol_and_refuses_a_mixture():
    from test_evidence import synthetic_records

    assert "protocol" not in evidence.analyse(synthetic_records(), n_boot=100)     # v2 as before
    mixed = synthetic_records() + v3_records()
    with pytest.raises(ValueError, match="several protocols"):
        evidence.analyse(mixed)


# --- the runner and the book's sentences ----------------------------------------------------------
def test_a_v2_record_in_a_v3_folder_is_refused_in_one_line(tmp_path):
    from compattn.train import pretrain_settings, write_record
    from test_sweep import _fake_record

    write_record(_fake_record("pretrain-none-s0", pretrain_settings("none", "tiny", 0, steps=3)),
                 tmp_path / "pretrain-none-s0.json")
    before = (tmp_path / "pretrain-none-s0.json").read_bytes()
    with pytest.raises(ValueError, match=r"pretrain-none-s0.json was made with other settings than this run would "
                                         r"use \(protocol_version: '\(none\)' -> 3\); delete it"):
        evidence.run_evidence(tmp_path, "tiny", steps={"pretrain": 3, "finetune": 1}, variants=["none"],
                              tasks=["word_order"], progress=False, device="cpu", protocol=3)
    assert (tmp_path / "pretrain-none-s0.json").read_bytes() == before and not list(tmp_path.glob("*.pt"))


def test_progress_and_banner_of_an_empty_v3_folder_say_only_what_is_there(tmp_path):
    got = evidence.progress_of(tmp_path / "evidence-v3-cpu", "cpu", protocol=3)
    assert got == {"recorded": 0, "planned": 9 * 5 + 9 * 5 * 2 * 5, "protocol": 3}
    (tmp_path / "evidence-v3-cpu").mkdir()
    text = evidence.banner(tmp_path / "evidence-v3-cpu")
    assert "no runs recorded yet" in text and "device" not in text and "GPU" not in text


def test_the_command_line_takes_the_protocol(capsys):
    from compattn.__main__ import main

    assert main(["evidence", "--protocol", "5", "--profile", "tiny", "--out", "/nonexistent/x"]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "--protocol" in err


def test_the_scorecard_table_of_v3_has_one_row_per_claim_with_its_interval():
    a = evidence.analyse(v3_records(gain={"composite": 0.15}))
    lines = evidence.claims_table(a).splitlines()
    assert len(lines) == 2 + 9
    row = next(line for line in lines if "`composite` − `absolute`" in line)
    c = verdicts(a)[("composite", "absolute")]
    assert f"{100 * c['diff']:+.1f} [{100 * c['low']:+.1f}, {100 * c['high']:+.1f}]" in row
    assert row.endswith("| supports |")
    stuck = evidence.claims_table(evidence.analyse(v3_records(gap=0.0)))
    assert "gate failed" in stuck and "supports" not in stuck.split("`none`")[0]
