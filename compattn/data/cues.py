"""Surface cues: can a task's label be read off its text without reading the text?

A *cue rule* looks at one surface feature of a text (its last token, its first token, its
length in words, which punctuation marks it holds) and answers, for each value of the
feature, the label that value had most often in the training split; a value seen fewer than
``MIN_SUPPORT`` times there, or never, gets the training split's majority label.  The
``majority`` rule answers that label for every text.  Each rule is fitted on train and
scored on test, next to *chance*: the largest class share of the test split.  A rule well
above chance is a shortcut a model can take instead of the skill the task is meant to ask
for (the old ``word_order`` was solved at 99 % by "ends in ``.``, ``!``, ``?`` or a quote").

:func:`order_baseline` is the other side: a bigram Naive Bayes model, which reads which word
follows which, shows that a task *can* be solved from local word order.
:func:`unknown_tokens` says how much of a task the tokenizer cannot see (emoji and
non-Latin scripts become ``[UNK]`` and vanish on decoding).  The data build records all
three for every task (:func:`task_measures`, in each task's ``info.json`` and the manifest).
Pair tasks are judged on their first text.
"""
from __future__ import annotations

import re
from collections import Counter

from .order import baselines, majority_share

MIN_SUPPORT = 3        # a feature value seen fewer times in train gets the majority label
DIGITS = 4             # accuracies are stored rounded, so the build's bytes never wobble


# --- the surface features -----------------------------------------------------------------------
def last_token(text: str) -> str:
    words = text.lower().split()
    return words[-1] if words else ""


def first_token(text: str) -> str:
    words = text.lower().split()
    return words[0] if words else ""


def length(text: str) -> str:
    return str(len(text.split()))


def punctuation(text: str) -> str:
    """Which punctuation marks the text holds (``"!,."``), each once."""
    return "".join(sorted(set(re.findall(r"[^\w\s]", text))))


def majority(text: str) -> str:
    return ""          # one value for every text: the rule answers the training majority


CUES = {"last_token": last_token, "first_token": first_token, "length": length,
        "punctuation": punctuation, "majority": majority}


# --- rules fitted on train, scored on test ------------------------------------------------------
def _most_common(counts: Counter) -> str:
    return max(sorted(counts), key=counts.get)        # ties: the first label in sorted order


def fit_rule(train: list[dict], cue) -> tuple[dict, str]:
    """``({value: label}, default)``: the most frequent training label of each value of
    ``cue(text)`` seen at least ``MIN_SUPPORT`` times, and the training majority label."""
    by_value: dict[str, Counter] = {}
    for row in train:
        by_value.setdefault(cue(row["text"]), Counter())[str(row["label"])] += 1
    default = _most_common(Counter(str(row["label"]) for row in train))
    rule = {value: _most_common(counts) for value, counts in by_value.items()
            if sum(counts.values()) >= MIN_SUPPORT}
    return rule, default


def rule_accuracy(train: list[dict], test: list[dict], cue) -> float:
    """Test accuracy of the rule of ``cue`` fitted on ``train``."""
    rule, default = fit_rule(train, cue)
    hits = sum(rule.get(cue(row["text"]), default) == str(row["label"]) for row in test)
    return hits / len(test)


def surface_cues(train: list[dict], test: list[dict]) -> dict:
    """``{"chance", "rules": {name: test accuracy}, "best", "best_accuracy", "advantage"}``:
    every rule of :data:`CUES` and the best of them, ``advantage`` = best - chance."""
    chance = majority_share(test)
    rules = {name: round(rule_accuracy(train, test, cue), DIGITS) for name, cue in CUES.items()}
    best = max(sorted(rules), key=rules.get)
    return {"chance": round(chance, DIGITS), "rules": rules, "best": best,
            "best_accuracy": rules[best], "advantage": round(rules[best] - chance, DIGITS)}


def order_baseline(train: list[dict], test: list[dict]) -> dict:
    """``{"chance", "bag_of_words", "bigrams"}``: Naive Bayes test accuracies without and with
    word order (:func:`compattn.data.order.baselines`)."""
    return {name: round(value, DIGITS) for name, value in baselines(train, test).items()}


# --- what the tokenizer cannot see ----------------------------------------------------------------
def unknown_tokens(rows: list[dict], tokenizer) -> dict:
    """``{"tokens", "rows"}``: the share of the pieces of ``rows`` (both texts of a pair) that
    are ``[UNK]``, and the share of rows with at least one."""
    unk = tokenizer.token_to_id("[UNK]")
    texts = [row["text"] for row in rows] + [row["text_b"] for row in rows if "text_b" in row]
    encodings = tokenizer.encode_batch(texts, add_special_tokens=False)
    owner = list(range(len(rows))) + [i for i, row in enumerate(rows) if "text_b" in row]
    pieces = sum(len(e.ids) for e in encodings)
    unknown = [e.ids.count(unk) for e in encodings]
    rows_hit = {i for i, n in zip(owner, unknown) if n}
    return {"tokens": round(sum(unknown) / max(1, pieces), DIGITS),
            "rows": round(len(rows_hit) / max(1, len(rows)), DIGITS)}


# --- what the build records -----------------------------------------------------------------------
def task_measures(rows: list[dict], tokenizer, order: bool = False) -> dict:
    """The measures recorded in a task's ``info.json``, from its rows (with their ``split``):
    ``surface_cues`` (train -> test), ``unknown_tokens`` per split and, with ``order``,
    ``order_baseline``."""
    parts = {split: [r for r in rows if r["split"] == split] for split in ("train", "dev", "test")}
    measures = {"surface_cues": surface_cues(parts["train"], parts["test"]),
                "unknown_tokens": {split: unknown_tokens(part, tokenizer)
                                   for split, part in parts.items()}}
    if order:
        measures["order_baseline"] = order_baseline(parts["train"], parts["test"])
    return measures


def cue_problem(task: str, info: dict, max_advantage: float) -> str | None:
    """One line when the best surface cue of ``task`` (its ``info``) beats chance by more than
    ``max_advantage``, else None."""
    cues = info.get("surface_cues")
    if cues is None:
        return f"{task} has no surface-cue measures (built by an older version): rebuild the data"
    if cues["advantage"] > max_advantage:
        return (f"{task}: the surface cue {cues['best']!r} scores {cues['best_accuracy']:.1%} on its "
                f"test split, {cues['advantage']:.1%} above chance {cues['chance']:.1%} (at most "
                f"{max_advantage:.0%} may)")
    return None


__all__ = ["CUES", "MIN_SUPPORT", "last_token", "first_token", "length", "punctuation", "majority",
           "fit_rule", "rule_accuracy", "surface_cues", "order_baseline", "unknown_tokens",
           "task_measures", "cue_problem"]
