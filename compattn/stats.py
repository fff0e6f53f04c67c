"""Error bars that respect where the noise is: a hierarchical, paired bootstrap.

A downstream score depends on three random draws: the pre-training seed (which checkpoint),
the fine-tuning seed (classifier initialisation and batch order) and the test items (a finite
sample of the task).  The bootstrap here resamples all three, in that order:

1. the pre-training seeds, with replacement;
2. within each drawn pre-training seed, its fine-tuning seeds, with replacement;
3. the test items, with replacement (one draw per replicate, shared by every seed, because
   every run of a task is scored on the same items).

Two variants trained with the same seeds see the same pre-training batches, the same
fine-tuning batch order and the same test items, so a comparison resamples them *together*
(paired): the same seed and item indices for both.  Everything is vectorised with NumPy.

Per-item results come as an array ``correct[p, f, n]`` (pre-training seed, fine-tuning seed,
test item) of 0/1.  With ``labels`` (the gold class of each item) the score is balanced
accuracy (the mean recall over classes), otherwise accuracy.
"""
from __future__ import annotations

import numpy as np


def _item_weights(rng, n_items: int, n_boot: int) -> np.ndarray:
    """(B, N) how often each item is drawn in each replicate (a multinomial resample)."""
    return rng.multinomial(n_items, np.full(n_items, 1.0 / n_items), size=n_boot).astype(float)


def _run_scores(correct: np.ndarray, weights: np.ndarray, labels=None) -> np.ndarray:
    """(B, P, F) the score of every run under each replicate's item weights."""
    correct = np.asarray(correct, dtype=float)
    if labels is None:
        return np.einsum("pfn,bn->bpf", correct, weights) / weights.sum(1)[:, None, None]
    labels = np.asarray(labels)
    recalls = []
    for c in np.unique(labels):
        in_c = (labels == c).astype(float)
        w_c = weights * in_c                                          # (B, N)
        total = w_c.sum(1)[:, None, None]
        hits = np.einsum("pfn,bn->bpf", correct, w_c)
        # a class that a replicate happens not to draw contributes nothing (rare for real sizes)
        recalls.append(np.where(total > 0, hits / np.maximum(total, 1e-12), np.nan))
    return np.nanmean(np.stack(recalls), axis=0)


def _seed_indices(rng, n_boot: int, n_pre: int, n_fine: int):
    """Resampled pre-training seeds (B, P) and fine-tuning seeds within each (B, P, F)."""
    return rng.integers(n_pre, size=(n_boot, n_pre)), rng.integers(n_fine, size=(n_boot, n_pre, n_fine))


def _seed_grid(arrays, what: str) -> tuple[int, int]:
    """The (pre-training, fine-tuning) seed counts that every array of ``arrays`` shares."""
    shapes = {np.shape(a)[:2] for a in arrays}
    if len(shapes) != 1:
        raise ValueError(f"every {what} needs the same (pre-training, fine-tuning) seeds, got {sorted(shapes)}")
    return next(iter(shapes))


def _gather(run_scores: np.ndarray, pre: np.ndarray, fine: np.ndarray) -> np.ndarray:
    """(B,) the mean over the resampled seeds of each replicate."""
    b = np.arange(run_scores.shape[0])[:, None, None]
    return run_scores[b, pre[:, :, None], fine].mean(axis=(1, 2))


def point_score(correct, labels=None) -> float:
    """The score averaged over every run (no resampling)."""
    correct = np.asarray(correct, dtype=float)
    return float(_run_scores(correct, np.ones((1, correct.shape[-1])), labels).mean())


def bootstrap(tasks, n_boot: int = 2000, seed: int = 0) -> np.ndarray:
    """(B,) replicates of the mean over ``tasks`` of one variant's score.

    ``tasks`` is a list of ``(correct, labels)`` with ``correct`` of shape (P, F, N_task); all
    tasks share the pre-training seeds (one checkpoint serves every task) and the fine-tuning
    seed indices, so those are drawn once per replicate; items are drawn per task.
    """
    return paired_bootstrap([(c, None, y) for c, y in tasks], n_boot, seed)[0]


def bootstrap_each(corrects, labels=None, n_boot: int = 2000, seed: int = 0) -> list[np.ndarray]:
    """``[bootstrap([(c, labels)], n_boot, seed) for c in corrects]`` for several variants
    scored on one task, with the item resample drawn once instead of once per variant.

    The draws are the very ones :func:`bootstrap` makes for each variant alone (same seed,
    same order), so the replicates are identical. Drawing the item weights is the slow part on
    tasks of ten thousand items.
    """
    n_pre, n_fine = _seed_grid(corrects, "variant")
    rng = np.random.default_rng(seed)
    pre, fine = _seed_indices(rng, n_boot, n_pre, n_fine)
    weights = _item_weights(rng, np.shape(corrects[0])[-1], n_boot)
    return [_gather(_run_scores(c, weights, labels), pre, fine) for c in corrects]


def paired_bootstrap(tasks, n_boot: int = 2000, seed: int = 0):
    """Replicates of the mean over tasks of variant a's score, b's score (or ``None``) and a−b.

    ``tasks``: a list of ``(correct_a, correct_b, labels)``; ``correct_b`` may be ``None``.
    The same seed and item indices are used for a and b (they share inputs).  Returns three
    (B,) arrays ``(a, b, a - b)`` (b and the difference ``None`` without b).
    """
    rng = np.random.default_rng(seed)
    n_pre, n_fine = _seed_grid([a for a, _, _ in tasks] + [b for _, b, _ in tasks if b is not None], "task")
    pre, fine = _seed_indices(rng, n_boot, n_pre, n_fine)
    sum_a, sum_b, paired = np.zeros(n_boot), np.zeros(n_boot), all(b is not None for _, b, _ in tasks)
    for a, b, labels in tasks:
        weights = _item_weights(rng, np.shape(a)[-1], n_boot)
        sum_a += _gather(_run_scores(a, weights, labels), pre, fine)
        if b is not None:
            sum_b += _gather(_run_scores(b, weights, labels), pre, fine)
    k = len(tasks)
    if not paired:
        return sum_a / k, None, None
    return sum_a / k, sum_b / k, (sum_a - sum_b) / k


def interval(replicates: np.ndarray, level: float = 0.95) -> tuple[float, float]:
    """The percentile interval holding ``level`` of the replicates."""
    tail = (1 - level) / 2
    low, high = np.quantile(replicates, [tail, 1 - tail])
    return float(low), float(high)


def verdict(low: float, high: float) -> str:
    """``"a better"`` when the whole interval of a−b is above 0, ``"b better"`` when below,
    else ``"inconclusive"``."""
    if low > 0:
        return "a better"
    if high < 0:
        return "b better"
    return "inconclusive"


def compare(tasks, level: float = 0.95, n_boot: int = 2000, seed: int = 0) -> dict:
    """Paired comparison of two variants over tasks: mean difference, interval and verdict."""
    a, b, diff = paired_bootstrap(tasks, n_boot, seed)
    point = float(np.mean([point_score(ca, y) - point_score(cb, y) for ca, cb, y in tasks]))
    low, high = interval(diff, level)
    return {"diff": point, "low": low, "high": high, "level": level, "verdict": verdict(low, high)}


# --- pre-training seeds as the unit: an interval that holds its level ------------------------------
# With three to five pre-training seeds the bootstrap above cannot know how far the seeds
# spread: resampling three values with replacement gives intervals narrower than their spread,
# and in simulations with no true difference it excluded zero two to three times as often as
# its level allows.  Protocol v3 takes each pre-training seed's paired difference (averaged over
# its fine-tuning seeds, its test items and the informative tasks) as one observation and puts
# a Student t-interval on their mean: exact when the seed differences are normal, and close
# when they are means of many items, as here (tests/test_stats.py measures its coverage).
def t_quantile(level: float, df: int) -> float:
    """The two-sided Student t quantile: ``P(|T_df| <= q) = level`` (bisection on the closed-form
    CDF for an integer number of degrees of freedom, Abramowitz & Stegun 26.7.3-4)."""
    if isinstance(df, bool) or not isinstance(df, int) or df < 1:
        raise ValueError(f"degrees of freedom must be a positive int, got {df!r}")
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level}")
    low, high = 0.0, 1.0
    while _t_inside(high, df) < level:
        high *= 2
    for _ in range(200):
        mid = (low + high) / 2
        low, high = (mid, high) if _t_inside(mid, df) < level else (low, mid)
    return (low + high) / 2


def _t_inside(t: float, df: int) -> float:
    """``P(|T_df| <= t)``."""
    import math

    theta = math.atan(t / math.sqrt(df))
    c2, total, term = math.cos(theta) ** 2, 0.0, 1.0
    if df % 2 == 0:                         # sin(theta) * (1 + 1/2 c^2 + 1*3/(2*4) c^4 + ...)
        for k in range(0, df - 1, 2):
            total += term
            term *= c2 * (k + 1) / (k + 2)
        return math.sin(theta) * total
    if df == 1:
        return 2 * theta / math.pi
    term = math.cos(theta)                  # 2/pi (theta + sin(theta) (c + 2/3 c^3 + ...))
    for k in range(1, df - 1, 2):
        total += term
        term *= c2 * (k + 1) / (k + 2)
    return 2 / math.pi * (theta + math.sin(theta) * total)


def seed_scores(correct, labels=None) -> np.ndarray:
    """(P,) each pre-training seed's score: the mean over its fine-tuning seeds of the run's
    accuracy (balanced accuracy with ``labels``)."""
    correct = np.asarray(correct, dtype=float)
    return _run_scores(correct, np.ones((1, correct.shape[-1])), labels)[0].mean(axis=1)


def seed_compare(tasks, level: float = 0.95) -> dict:
    """Paired comparison with the pre-training seed as the unit: ``tasks`` as for
    :func:`compare`; each seed's difference is averaged over the tasks, and the interval is the
    t-interval of their mean.  Returns ``diff``, ``low``, ``high``, ``level``, ``per_seed`` and
    ``verdict``."""
    _seed_grid([a for a, _, _ in tasks] + [b for _, b, _ in tasks], "task")
    per_seed = np.mean([seed_scores(a, y) - seed_scores(b, y) for a, b, y in tasks], axis=0)
    n = len(per_seed)
    if n < 2:
        raise ValueError(f"a t-interval needs at least two pre-training seeds, got {n}")
    mean = float(per_seed.mean())
    half = t_quantile(level, n - 1) * float(per_seed.std(ddof=1)) / np.sqrt(n)
    return {"diff": mean, "low": mean - half, "high": mean + half, "level": level,
            "per_seed": per_seed.tolist(), "verdict": verdict(mean - half, mean + half)}


def family_level(claims: int, alpha: float = 0.05) -> float:
    """The level of each of ``claims`` intervals so that all hold together with probability at
    least ``1 - alpha`` (Bonferroni: the error ``alpha`` shared equally)."""
    if isinstance(claims, bool) or not isinstance(claims, int) or claims < 1:
        raise ValueError(f"claims must be a positive int, got {claims!r}")
    return 1 - alpha / claims


__all__ = ["bootstrap", "bootstrap_each", "paired_bootstrap", "point_score", "interval", "verdict", "compare",
           "t_quantile", "seed_scores", "seed_compare", "family_level"]
