"""The hierarchical paired bootstrap on synthetic data: a planted difference is found, and a
null is called inconclusive at about the nominal rate."""
import numpy as np
import pytest

from compattn import stats


def simulate(rng, delta, n_pre=3, n_fine=2, n_items=150, pre_sd=0.3, fine_sd=0.15):
    """Per-item 0/1 results of two variants on the same items: item difficulty is shared,
    seed effects are each variant's own, ``delta`` is a's planted advantage (in logits)."""
    difficulty = rng.normal(0, 1, n_items)
    out = []
    for d in (delta, 0.0):
        logit = (0.5 + d - difficulty[None, None, :] + rng.normal(0, pre_sd, (n_pre, 1, 1))
                 + rng.normal(0, fine_sd, (n_pre, n_fine, 1)))
        out.append((rng.random((n_pre, n_fine, n_items)) < 1 / (1 + np.exp(-logit))).astype(np.int8))
    return out


def test_planted_difference_is_found():
    rng = np.random.default_rng(0)
    found = 0
    for r in range(20):
        a, b = simulate(rng, delta=1.5)
        result = stats.compare([(a, b, None)], level=0.95, n_boot=300, seed=r)
        assert result["low"] <= result["diff"] <= result["high"]
        found += result["verdict"] == "a better"
    assert found >= 18


def test_null_is_inconclusive_at_about_the_nominal_rate():
    rng = np.random.default_rng(1)
    replications, calls = 120, 0
    for r in range(replications):
        a, b = simulate(rng, delta=0.0)
        calls += stats.compare([(a, b, None)], level=0.95, n_boot=300, seed=r)["verdict"] != "inconclusive"
    # nominal 5 %; with three top-level seeds the percentile bootstrap is somewhat liberal
    assert calls / replications <= 0.12


def test_pairing_removes_shared_item_noise():
    rng = np.random.default_rng(2)
    a, b = simulate(rng, delta=0.3, pre_sd=0.0, fine_sd=0.0, n_items=400)
    _, _, paired = stats.paired_bootstrap([(a, b, None)], n_boot=400, seed=0)
    alone_a = stats.bootstrap([(a, None)], n_boot=400, seed=0)
    alone_b = stats.bootstrap([(b, None)], n_boot=400, seed=1)
    assert paired.std() < np.sqrt(alone_a.var() + alone_b.var())


def test_balanced_accuracy_weights_classes_equally():
    labels = np.array([0] * 90 + [1] * 10)
    always_zero = (labels == 0).astype(int)[None, None, :]
    assert stats.point_score(always_zero) == pytest.approx(0.9)
    assert stats.point_score(always_zero, labels) == pytest.approx(0.5)


def test_tasks_must_share_seeds():
    with pytest.raises(ValueError, match="same"):
        stats.paired_bootstrap([(np.zeros((3, 2, 5)), None, None), (np.zeros((2, 2, 5)), None, None)])


@pytest.mark.parametrize("balanced", [False, True])
def test_bootstrap_each_draws_what_bootstrap_draws_for_each_variant(balanced):
    rng = np.random.default_rng(3)
    labels = rng.integers(0, 3, 200) if balanced else None
    corrects = [(rng.random((3, 2, 200)) < p).astype(np.int8) for p in (0.5, 0.6, 0.7)]
    each = stats.bootstrap_each(corrects, labels, n_boot=300, seed=5)
    for correct, reps in zip(corrects, each):
        np.testing.assert_array_equal(reps, stats.bootstrap([(correct, labels)], n_boot=300, seed=5))
    with pytest.raises(ValueError, match="same"):
        stats.bootstrap_each([corrects[0], corrects[1][:2]], labels)


# --- the seed t-interval of protocol v3 ----------------------------------------------------------
def test_t_quantiles_match_the_tables():
    for level, df, table in [(0.95, 1, 12.706), (0.95, 4, 2.776), (0.99, 4, 4.604), (0.99, 9, 3.250),
                             (0.95, 30, 2.042)]:
        assert stats.t_quantile(level, df) == pytest.approx(table, abs=1e-3)
    with pytest.raises(ValueError, match="degrees of freedom"):
        stats.t_quantile(0.95, 0)


def test_the_seed_interval_holds_its_level_with_no_true_difference():
    """Coverage, measured: five pre-training seeds x two fine-tuning seeds x 300 items on two
    tasks, seed effects of each variant's own, no true difference.  The interval must exclude
    zero at most as often as its level allows, plus three simulation standard errors (a normal
    quantile in place of the t quantile excludes zero about 12 % of the time, and fails)."""
    rng = np.random.default_rng(11)
    reps, level = 600, 0.95
    rejections = 0
    for _ in range(reps):
        tasks = [(*simulate(rng, 0.0, n_pre=5, n_items=300), None) for _ in range(2)]
        result = stats.seed_compare(tasks, level)
        rejections += result["low"] > 0 or result["high"] < 0
    allowed = (1 - level) + 3 * np.sqrt(level * (1 - level) / reps)
    assert rejections / reps <= allowed, rejections / reps


def test_the_seed_interval_finds_a_planted_difference_and_averages_tasks():
    rng = np.random.default_rng(12)
    a, b = simulate(rng, 1.0, n_pre=5, n_items=300)
    result = stats.seed_compare([(a, b, None)], 0.95)
    assert result["low"] > 0 and result["verdict"] == "a better" and len(result["per_seed"]) == 5
    expected = stats.seed_scores(a) - stats.seed_scores(b)
    np.testing.assert_allclose(result["per_seed"], expected)
    assert result["diff"] == pytest.approx(expected.mean())
    assert stats.family_level(9) == pytest.approx(1 - 0.05 / 9)
