"""``word_order``: is a real sentence intact, or were its inner words shuffled?

Built offline from real sentences that are not in the pre-training corpus (the movie-review and
news snippets of VADER, 6–40 words).  Each sentence is used once, and a sentence that repeats
another up to case and punctuation counts as the same one.  In each split half of them,
chosen by a hash of the text, are kept as they are (label ``1``); the other half are
*shuffled* (label ``0``): the words strictly inside the sentence that are plain words
(``film``, ``don't``; not ``fun,`` or ``.``) trade places, while the first and the last token
and every token with punctuation keep theirs.  So the two classes have the same first and
last tokens, the same lengths, the same punctuation in the same places and the same words:
no surface cue separates them, and a bag of words carries no information about the label.
Only the order of the inner words does, and a model that sees which word follows which (a
bigram model) can read it: ``"the film is a joy to watch ."`` against
``"the joy a is film to watch ."``.

An earlier version *rotated* the sentence (``B A`` for ``A B``); its negatives mostly ended
in a word and its positives in ``.``, so the last token alone solved it.
:mod:`compattn.data.cues` measures such cues; the build records them for every task.

:func:`naive_bayes_accuracy` measures how far order is needed: a multinomial Naive Bayes
classifier on unigram counts (order-blind) and on unigram + bigram counts (local order).
"""
from __future__ import annotations

import hashlib
import math
import random
import re
from collections import Counter

from .readers import normalised

MIN_WORDS, MAX_WORDS, MIN_MOVABLE = 6, 40, 3
_WORD = re.compile(r"\w+(?:['-]\w+)*")


def _hash_int(key: str) -> int:
    return int(hashlib.sha256(key.encode("utf-8")).hexdigest()[:12], 16)


def movable(words: list[str]) -> list[int]:
    """The positions that a shuffle may change: plain words strictly inside the sentence."""
    return [i for i in range(1, len(words) - 1) if _WORD.fullmatch(words[i])]


def shufflable(words: list[str]) -> bool:
    """At least ``MIN_MOVABLE`` movable words, not all the same (so a shuffle can change them)."""
    inner = [words[i] for i in movable(words)]
    return len(inner) >= MIN_MOVABLE and len(set(inner)) > 1


def shuffle_interior(words: list[str], h: int) -> list[str]:
    """``words`` with its movable words (:func:`movable`) in another order, drawn from a
    generator seeded by ``h``; every other token keeps its place."""
    places = movable(words)
    rng = random.Random(h)
    while True:
        inner = [words[i] for i in places]
        rng.shuffle(inner)
        shuffled = list(words)
        for i, word in zip(places, inner):
            shuffled[i] = word
        if shuffled != words:
            return shuffled


def order_rows(sentences: list[dict], split_of) -> list[dict]:
    """The task's rows ``{"text", "label", "split"}`` from VADER sentences
    (``readers.vader_sentences``), movie and news domains only.  ``split_of(key)`` assigns a
    split from the sentence's normalised text (``readers.normalised``), as for ``vader_sent``.
    In each split the sentences, ranked by a hash of their text, are labelled intact and
    shuffled in turn, so the classes are balanced to one sentence."""
    kept: dict[str, str] = {}
    for s in sentences:
        words = s["text"].split()
        if s["domain"] not in ("movie", "nyt") or not MIN_WORDS <= len(words) <= MAX_WORDS:
            continue
        if shufflable(words):
            kept.setdefault(normalised(s["text"]), s["text"])
    split = {key: split_of(key) for key in kept}
    label = {}
    for part in ("train", "dev", "test"):
        ranked = sorted((key for key in kept if split[key] == part), key=lambda k: _hash_int(kept[k]))
        label.update({key: "1" if rank % 2 == 0 else "0" for rank, key in enumerate(ranked)})
    rows = []
    for key, text in kept.items():
        words = text.split()
        if label[key] == "0":
            words = shuffle_interior(words, _hash_int("shuffle " + text))
        rows.append({"text": " ".join(words), "label": label[key], "split": split[key]})
    return rows


# --- baselines -----------------------------------------------------------------------------------
def _words(text: str) -> list[str]:
    return re.findall(r"\w+|[^\w\s]", text.lower())


def features(text: str, bigrams: bool) -> list[str]:
    """Lower-cased words and punctuation (order-blind), plus neighbouring pairs with ``bigrams``
    (``<s>``/``</s>`` mark the ends, so the first and last words count as pairs too)."""
    words = _words(text)
    if not bigrams:
        return words
    padded = ["<s>"] + words + ["</s>"]
    return words + [f"{a} {b}" for a, b in zip(padded, padded[1:])]


def naive_bayes_accuracy(train: list[dict], test: list[dict], bigrams: bool, alpha: float = 1.0) -> float:
    """Test accuracy of multinomial Naive Bayes (add-``alpha`` smoothing) trained on ``train``."""
    counts: dict[str, Counter] = {}
    priors = Counter(str(r["label"]) for r in train)
    for r in train:
        counts.setdefault(str(r["label"]), Counter()).update(features(r["text"], bigrams))
    vocab = set().union(*counts.values())
    totals = {c: sum(cnt.values()) for c, cnt in counts.items()}
    correct = 0
    for r in test:
        feats = features(r["text"], bigrams)

        def score(c):
            denom = totals[c] + alpha * (len(vocab) + 1)
            return math.log(priors[c] / len(train)) + sum(
                math.log((counts[c][f] + alpha) / denom) for f in feats)

        correct += max(counts, key=score) == str(r["label"])
    return correct / len(test)


def majority_share(rows: list[dict]) -> float:
    """The largest class share of ``rows``: what always answering one label scores."""
    shares = Counter(str(r["label"]) for r in rows)
    return max(shares.values()) / len(rows)


def baselines(train: list[dict], test: list[dict]) -> dict:
    """``{"chance", "bag_of_words", "bigrams"}`` test accuracies."""
    return {"chance": majority_share(test), "bag_of_words": naive_bayes_accuracy(train, test, False),
            "bigrams": naive_bayes_accuracy(train, test, True)}


__all__ = ["order_rows", "movable", "shufflable", "shuffle_interior", "features", "naive_bayes_accuracy", "majority_share", "baselines"]
