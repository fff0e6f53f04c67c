"""``word_order``: is a real sentence intact, or was it rotated?

Built offline from real sentences that are not in the pre-training corpus (the movie-review and
news snippets of VADER, 6–40 words).  Each sentence is used once.  Half of them, chosen by a
hash of the text, are kept as they are (label ``1``); the other half are *rotated*: cut at a
word boundary strictly inside the sentence and the two parts swapped, ``B A`` instead of
``A B`` (label ``0``).  The cut keeps at least two words on each side.

Both classes are made of the same kind of sentences, and a rotation changes no word, so a
bag of words carries no information about the label: an order-blind model scores chance.
The seam of a rotation (the old end of the sentence followed by its old beginning, such as
``". the"`` or ``"film . it"``) is a pair of neighbouring words that intact sentences rarely
contain, so a model that sees which word follows which (a bigram model) can solve it.

:func:`naive_bayes_accuracy` measures both: a multinomial Naive Bayes classifier on unigram
counts (order-blind) and on unigram + bigram counts (local order).
"""
from __future__ import annotations

import hashlib
import math
import re
from collections import Counter

MIN_WORDS, MAX_WORDS, MIN_SIDE = 6, 40, 2


def _hash_int(key: str) -> int:
    return int(hashlib.sha256(key.encode("utf-8")).hexdigest()[:12], 16)


def rotate(words: list[str], h: int) -> list[str]:
    """``words`` cut after ``k`` words (``MIN_SIDE <= k <= len - MIN_SIDE``, chosen by ``h``)
    and the parts swapped."""
    cuts = list(range(MIN_SIDE, len(words) - MIN_SIDE + 1))
    k = cuts[h % len(cuts)]
    return words[k:] + words[:k]


def order_rows(sentences: list[dict], split_of) -> list[dict]:
    """The task's rows ``{"text", "label", "split"}`` from VADER sentences
    (``readers.vader_sentences``), movie and news domains only; ``split_of(text)`` assigns a
    split from the sentence, as for every other task."""
    seen, rows = set(), []
    for s in sentences:
        words = s["text"].split()
        if s["domain"] not in ("movie", "nyt") or not MIN_WORDS <= len(words) <= MAX_WORDS:
            continue
        if s["text"] in seen:
            continue
        seen.add(s["text"])
        h = _hash_int(s["text"])
        label = "1"
        if h % 2:
            words, label = rotate(words, h // 2), "0"
        rows.append({"text": " ".join(words), "label": label, "split": split_of(s["text"])})
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


__all__ = ["order_rows", "rotate", "features", "naive_bayes_accuracy", "majority_share", "baselines"]
