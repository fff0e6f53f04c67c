"""How much held-out text a model could have memorised: shared token spans between two sets.

A dev block *overlaps* training when one of its ``n``-token spans (``n`` = 8) occurs anywhere
in a training block.  Held-out documents still share stock phrases with training text ("to
be sure,", "-- Mark Twain"); a dev split cut from the same documents as training, or from a
second translation of the same verses, shares whole passages.  ``dev_overlap`` gives the share
of dev blocks that overlap, which the data check bounds.
"""
from __future__ import annotations

import numpy as np

_BASE = np.int64(1_000_003)


def ngram_hashes(ids, n: int) -> np.ndarray:
    """A 64-bit hash (wrapping polynomial) of every ``n``-token span of ``ids``."""
    ids = np.asarray(ids, dtype=np.int64)
    if len(ids) < n:
        return np.empty(0, dtype=np.int64)
    spans = len(ids) - n + 1
    h = np.zeros(spans, dtype=np.int64)
    with np.errstate(over="ignore"):
        for k in range(n):
            h = h * _BASE + ids[k:k + spans]
    return h


def blocks_of(streams, body: int) -> list[np.ndarray]:
    """Each token stream cut into consecutive blocks of ``body`` tokens (as pre-training cuts
    them; a tail shorter than a quarter block is dropped)."""
    out = []
    for ids in streams:
        for start in range(0, len(ids), body):
            chunk = ids[start:start + body]
            if len(chunk) >= body // 4:
                out.append(np.asarray(chunk, dtype=np.int64))
    return out


def dev_overlap(train_streams, dev_streams, body: int = 62, n: int = 8) -> dict:
    """``{"blocks", "overlapping", "share"}``: how many dev blocks share an ``n``-token span with
    a training block (streams are token-id lists, one per document)."""
    seen = np.unique(np.concatenate([ngram_hashes(b, n) for b in blocks_of(train_streams, body)] or
                                    [np.empty(0, np.int64)]))
    dev = blocks_of(dev_streams, body)
    hashes = [ngram_hashes(b, n) for b in dev]
    owner = np.repeat(np.arange(len(dev)), [len(h) for h in hashes])
    hit = np.isin(np.concatenate(hashes or [np.empty(0, np.int64)]), seen)
    overlapping = len(np.unique(owner[hit]))
    return {"blocks": len(dev), "overlapping": overlapping, "share": overlapping / max(1, len(dev))}


__all__ = ["ngram_hashes", "blocks_of", "dev_overlap"]
