"""The recipe search (compattn.search): its plan, each candidate's settings, and the pass rule
and choice of compattn.protocol.SEARCH applied to made-up records."""
import pytest

from compattn import search
from compattn.protocol import SEARCH


def fake(candidate, multiple, variant, loss, gap):
    return {"candidate": candidate, "multiple": multiple, "variant": variant, "device": "cpu",
            "wall_time_s": 60.0, "train": {"steps": 2000 * multiple},
            "final": {"loss": loss, "order_gap": gap}}


def cpu_records(passing: dict) -> list:
    """Both variants of every candidate; ``passing[c] = (absolute loss, absolute gap)``."""
    out = []
    for c in SEARCH["candidates"]:
        loss, gap = passing.get(c, (5.70, 0.01))
        out += [fake(c, 1, "absolute", loss, gap), fake(c, 1, "none", 5.64, 0.0)]
    return out


def test_plans_and_settings():
    assert len(search.plan("cpu")) == 2 * len(SEARCH["candidates"])
    gpu = search.plan("gpu")
    assert ("steps4k", 4, "absolute") not in gpu and ("base", 16, "none") in gpu
    costs = [r[1] * SEARCH["candidates"][r[0]][2] for r in gpu]
    assert costs == sorted(costs)                              # shortest first
    train, model = search.overrides("cramming", 4)
    assert train["steps"] == 4000 and train["warmup"] == 0.5 and model == {"max_len": 128}
    assert train["eval_batches"] * 32 == search.DEV_BLOCKS and train["eval_every"] * 20 == 4000
    with pytest.raises(ValueError, match="unknown candidate"):
        search.overrides("nope")
    with pytest.raises(ValueError, match="multiple"):
        search.overrides("base", True)
    with pytest.raises(ValueError, match="arm"):
        search.plan("tpu")


def test_the_pass_rule_needs_both_an_order_gap_and_a_lower_loss():
    rows = {r["candidate"]: r for r in search.rows(cpu_records({
        "mask30": (5.60, 0.30),           # reads order and beats none: passes
        "blocks32": (5.60, 0.05),         # beats none without reading order: fails
        "sinusoid": (5.66, 0.40),         # reads order but does not beat none: fails
    }))}
    assert rows["mask30"]["passes"] and not rows["blocks32"]["passes"] and not rows["sinusoid"]["passes"]
    assert rows["mask30"]["difference"] == pytest.approx(-0.04)


def test_the_choice_takes_the_cheapest_passing_candidate_then_the_lowest_loss():
    v = search.verdict(cpu_records({"steps4k": (5.30, 0.5), "mask30": (5.60, 0.3), "onecycle": (5.55, 0.2)}))
    assert v["complete"] and v["chosen"] == "onecycle"        # steps4k costs twice the tokens
    assert search.verdict(cpu_records({}))["chosen"] is None
    unfinished = [r for r in cpu_records({"mask30": (5.6, 0.3)}) if r["candidate"] != "base"]
    assert search.verdict(unfinished) == {**search.verdict(unfinished), "complete": False, "chosen": None}


# --- protocol v3's budget curve ------------------------------------------------------------------
def _point(steps, difference, gap):
    return {"steps": steps, "difference": difference, "absolute_gap": gap,
            "passes": gap >= 0.10 and difference < 0}


def test_curve_runs_only_the_budgets_the_search_did_not():
    assert search.plan("curve") == [("base", 4, "absolute"), ("base", 4, "none"),
                                    ("base", 8, "absolute"), ("base", 8, "none")]
    assert search.overrides("base", 8)[0]["steps"] == 16000


def test_curve_answer_is_the_smallest_passing_budget():
    points = [_point(2000, 0.04, 0.0), _point(4000, -0.01, 0.2), _point(8000, -0.1, 0.5)]
    assert search.curve_answer(points)["reads_order_at"] == 4000


def test_curve_answer_extrapolates_in_log_steps_when_none_passes():
    # the gap rises 0.02 per doubling, 0.04 at 16k: 0.10 three doublings later (128k); the loss
    # difference already crossed: the later of the two is the estimate, the GPU plan 2^17
    points = [_point(4000, 0.01, 0.0), _point(8000, -0.01, 0.02), _point(16000, -0.03, 0.04)]
    answer = search.curve_answer(points)
    assert answer["reads_order_at"] is None
    assert abs(answer["gap_reaches_at"] - 128000) < 1e-6 * 128000
    assert abs(answer["estimate"] - 128000) < 1e-6 * 128000 and answer["gpu_plan"] == 131072


def test_curve_answer_gives_no_estimate_when_the_gap_does_not_grow():
    points = [_point(4000, 0.01, 0.0), _point(8000, 0.0, -0.001), _point(16000, -0.01, -0.002)]
    answer = search.curve_answer(points)
    assert answer["estimate"] is None and answer["gap_reaches_at"] is None


def test_the_budget_sentence_says_what_the_curve_found():
    assert "from 4,000 pre-training steps" in search.budget_sentence(
        [_point(2000, 0.04, 0.0), _point(4000, -0.01, 0.2)])
    extrapolated = search.budget_sentence(
        [_point(4000, 0.01, 0.0), _point(8000, -0.01, 0.02), _point(16000, -0.03, 0.04)])
    assert "does not read word order" in extrapolated and "131,072" in extrapolated
    assert "no estimate" in search.budget_sentence(
        [_point(4000, 0.01, 0.0), _point(8000, 0.0, -0.001), _point(16000, -0.01, -0.002)])
    assert "no records" in search.budget_sentence([])
