"""The evidence protocol: its plan, thresholds, plateau exits and analysis (the runner end to
end: checks/test_evidence_run.py)."""
import pytest

from compattn import evidence
from compattn.data import TASKS


def assert_runs_in_order(runs):
    """A plan's run names are unique and every fine-tuning comes after the pre-training it
    starts from (shared with tests/test_evidence_v3.py)."""
    names = [evidence.run_name(*r) for r in runs]
    assert len(set(names)) == len(names)
    for i, (kind, variant, seed, _) in enumerate(runs):
        if kind == "finetune":
            assert ("pretrain", variant, evidence.pretrain_seed_of(seed), None) in runs[:i]


def test_plan_covers_every_variant_seed_and_task():
    import compattn

    runs = evidence.plan("tiny")
    seeds = evidence.PROTOCOL["seeds"]
    n_pre, n_fine = len(seeds["pretrain"]), len(seeds["finetune_per_pretrain"])
    assert len(seeds["pretrain"]) >= 3
    assert sum(r[0] == "pretrain" for r in runs) == len(compattn.variants()) * n_pre
    assert sum(r[0] == "finetune" for r in runs) == len(compattn.variants()) * n_pre * n_fine * len(TASKS)
    assert_runs_in_order(runs)


def test_protocol_thresholds_are_stated():
    p = evidence.PROTOCOL
    for key in ("recipe", "budget", "seeds", "plateau", "gate", "chance", "informative", "verdict"):
        assert key in p
    text = evidence.protocol_text()
    assert max(map(len, text.splitlines())) <= 88


def test_plateau_exit():
    out = evidence.plateau_exit([100, 200, 300, 400], [6.5, 6.2, 5.9, 5.0], 6.45, 800)
    assert out["left_at"] == 300 and out["left_in_time"]
    never = evidence.plateau_exit([100, 200], [6.5, 6.4], 6.45, 200)
    assert never["left_at"] is None and not never["left_in_time"]


def test_best_evidence_prefers_complete_gpu(tmp_path):
    assert evidence.best_evidence(tmp_path) is None
    for profile in ("cpu", "gpu"):
        (tmp_path / evidence.EVIDENCE_DIRS[profile]).mkdir()
    (tmp_path / "evidence-cpu" / evidence.COMPLETE).write_text("{}")
    assert evidence.best_evidence(tmp_path).name == "evidence-cpu"
    (tmp_path / "evidence-gpu" / evidence.COMPLETE).write_text("{}")
    assert evidence.best_evidence(tmp_path).name == "evidence-gpu"


def synthetic_records(gain=None, stuck=(), n_items=300, tasks=("wn_pos", "word_order"), seed=0):
    """Records as the runner writes them, with planted per-variant accuracies."""
    import numpy as np

    from compattn.train import encode_items

    rng = np.random.default_rng(seed)
    gain = gain or {}
    variants = ["absolute", "none", "composite", "composite_fixed", "composite_query",
                "composite_key", "lightconv", "dynconv", "conv_values"]
    records = []
    golds = {t: rng.integers(0, 2 if t == "word_order" else 4, n_items) for t in tasks}
    golds["wn_pos"][: int(0.7 * n_items)] = 0           # unbalanced: balanced accuracy
    for v in variants:
        for p in evidence.PROTOCOL["seeds"]["pretrain"]:
            left = None if v in stuck else 300
            records.append({"kind": "pretrain", "variant": v, "seed": p, "train": {"steps": 1000},
                            "final": {"loss": 5.0 - 0.01 * (v != "none") + 0.001 * p},
                            "plateau": {"left_at": left, "left_in_time": left is not None}})
            for f in evidence.PROTOCOL["seeds"]["finetune_per_pretrain"]:
                for t in tasks:
                    gold = golds[t]
                    right = rng.random(n_items) < 0.6 + gain.get(v, 0.0)
                    pred = np.where(right, gold, (gold + 1) % (gold.max() + 1))
                    records.append({"kind": "finetune", "variant": v, "task": t,
                                    "seed": evidence.finetune_seed(p, f),
                                    "final": {"test": {"items": {"pred": encode_items(pred),
                                                                 "gold": encode_items(gold)}}}})
    return records


def test_analysis_finds_a_planted_gain_and_excludes_stuck_runs():
    a = evidence.analyse(synthetic_records(gain={"composite": 0.2}, stuck=("dynconv",)), n_boot=300)
    verdicts = {(c["x"], c["y"]): c for c in a["claims"]}
    assert a["gate"]["passed"]
    assert verdicts[("composite", "absolute")]["verdict"] == "supports"
    assert verdicts[("dynconv", "absolute")]["verdict"] == "not established"
    assert "plateau" in verdicts[("dynconv", "absolute")]["why"]
    assert verdicts[("lightconv", "absolute")]["verdict"] != "supports"
    assert a["balanced"]["wn_pos"] and not a["balanced"]["word_order"]
    assert set(a["informative"]) == {"wn_pos", "word_order"}
    for table in [evidence.plateau_table(a), evidence.claims_table(a), *evidence.score_tables(a)]:
        header = table.splitlines()[0]
        assert header.count("|") - 1 <= 7
        assert "|" in table and "nan" not in table


def test_analysis_leaves_uninformative_tasks_out_and_checks_the_gate():
    records = synthetic_records(gain={v: -0.1 for v in ["absolute", "none", "composite", "composite_fixed",
                                                        "composite_query", "composite_key", "lightconv",
                                                        "dynconv", "conv_values"]})
    for r in records:       # absolute worse than none at masked LM
        if r["kind"] == "pretrain" and r["variant"] == "absolute":
            r["final"]["loss"] = 9.0
    a = evidence.analyse(records, n_boot=200)
    assert "word_order" not in a["informative"]        # 50 % on a balanced binary task
    assert not a["gate"]["passed"]
    assert all(c["verdict"] == "not established" for c in a["claims"] if c["y"] == "absolute")


def test_analysis_of_an_unfinished_run_draws_no_verdict_from_a_partial_grid():
    """While the runner is still going, one variant may have all its fine-tunings and the other
    only some: the comparison is then not drawn, rather than averaged over what exists."""
    records = synthetic_records(gain={"composite": 0.2})
    missing = next(r for r in records if r["kind"] == "finetune" and r["variant"] == "absolute"
                   and r["task"] == "wn_pos" and r["seed"] == evidence.finetune_seed(2, 1))
    records.remove(missing)
    a = evidence.analyse(records, n_boot=200)
    verdicts = {(c["x"], c["y"]): c for c in a["claims"]}
    assert verdicts[("composite", "absolute")]["verdict"] == "not established"
    assert verdicts[("composite", "absolute")]["why"] == "fine-tunings incomplete"
    assert ("absolute", "wn_pos") not in a["scores"]
    assert verdicts[("composite", "none")]["verdict"] == "supports"


def test_mean_curves_average_the_seeds_on_their_common_steps():
    def run(variant, seed, losses, steps=(100, 200)):
        return {"kind": "pretrain", "variant": variant, "seed": seed,
                "plateau": {"unigram_loss": 6.0},
                "curves": {"step": list(steps), "dev": [{"loss": x} for x in losses]}}

    curves, unigram = evidence.mean_curves([run("none", 0, [6.0, 5.0]), run("none", 1, [5.0, 4.0]),
                                            {"kind": "finetune"}])
    assert curves == {"none": ([100, 200], [5.5, 4.5])} and unigram == 6.0
    with pytest.raises(ValueError, match="different steps"):
        evidence.mean_curves([run("none", 0, [6.0, 5.0]), run("none", 1, [5.0], steps=(100,))])


def test_task_metrics_keep_items_and_balanced_accuracy():
    import torch

    from compattn.train import decode_items, majority_accuracy, task_metrics

    y = torch.tensor([0] * 8 + [1] * 2)
    logits = torch.zeros(10, 2)
    logits[:, 0] = 1.0                                  # always class 0
    m = task_metrics(logits, y, False, 2, items=True)
    assert m["accuracy"] == pytest.approx(0.8) and m["balanced_accuracy"] == pytest.approx(0.5)
    assert decode_items(m["items"]["gold"]) == y.tolist() and set(m["items"]["pred"]) == {"0"}
    splits = {"dev": (None, None, torch.tensor([1, 1, 0])), "test": (None, None, y)}
    chance = majority_accuracy(torch.tensor([1, 1, 1, 0]), splits, 2)
    assert chance["test"] == pytest.approx(0.8)               # the test split's largest class
    assert chance["train_majority"] == pytest.approx(0.2)     # the training majority scores less
    assert chance["balanced"] == 0.5


def test_pilot_tables_are_split_to_fit():
    from compattn import sweep

    summary = {v: {t: {"mean": 0.5, "std": 0.01, "n": 3} for t in "abcdef"} for v in ("x", "y")}
    tables = sweep.score_tables(summary, {t: 0.5 for t in "abcdef"})
    assert len(tables) == 2
    assert all(t.splitlines()[0].count("|") - 1 <= 7 for t in tables)


# --- the runner: what counts as done (the runner end to end: checks/test_evidence_run.py) -------
def test_a_record_made_with_other_settings_is_refused_as_a_sweep_refuses_it(tmp_path):
    """The runner never overwrites a record the plan did not ask for: it stops before training
    anything, names the record and what differs, and says how to proceed."""
    from compattn.train import pretrain_settings, write_record
    from test_sweep import _fake_record

    made = _fake_record("pretrain-none-s0", pretrain_settings("none", "tiny", 0, steps=3))
    write_record(made, tmp_path / "pretrain-none-s0.json")
    before = (tmp_path / "pretrain-none-s0.json").read_bytes()
    kw = dict(variants=["none"], tasks=["word_order"], progress=False, device="cpu")
    with pytest.raises(ValueError, match=r"pretrain-none-s0.json was made with other settings than this run "
                                         r"would use \(train.steps: 3 -> 4\); delete it \(and its checkpoint\) to "
                                         r"run it again with these settings, or use another --out"):
        evidence.run_evidence(tmp_path, "tiny", steps={"pretrain": 4, "finetune": 1}, **kw)
    assert (tmp_path / "pretrain-none-s0.json").read_bytes() == before
    assert not list(tmp_path.glob("*.pt")), "nothing was trained"
    assert evidence.run_status(tmp_path, ("pretrain", "none", 0, None), "tiny", {"pretrain": 3})[0] == "done"
    # a record whose settings are gone is judged by its profile and step count, with the same refusal
    legacy = {k: v for k, v in made.items() if k != "settings"}
    write_record(legacy, tmp_path / "pretrain-none-s0.json")
    with pytest.raises(ValueError, match=r"other settings .*it holds no settings"):
        evidence.run_evidence(tmp_path, "tiny", steps={"pretrain": 3, "finetune": 1}, **kw)


@pytest.mark.parametrize("bad", [dict(parallel=0), dict(parallel=True), dict(parallel=1.5),
                                 dict(deadline=float("nan")), dict(steps={"pretrain": -1}),
                                 dict(steps={"pretrain": True}), dict(steps={"pre": 2})])
def test_runner_arguments_are_checked(tmp_path, bad):
    with pytest.raises(ValueError, match="parallel|deadline|steps"):
        evidence.run_evidence(tmp_path, "tiny", progress=False, **bad)
    assert not tmp_path.joinpath("complete.json").exists() and not list(tmp_path.iterdir())


def test_progress_lines_do_not_announce_evidence_that_does_not_exist(tmp_path):
    assert evidence.progress_lines(tmp_path) == []
    (tmp_path / evidence.EVIDENCE_DIRS["gpu"]).mkdir()           # a folder, no record yet
    assert evidence.progress_lines(tmp_path) == []
    committed = evidence.progress_lines()
    assert all(" 0 of " not in line and "none yet" not in line for line in committed)
