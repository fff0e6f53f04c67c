"""Synthetic position probes, generated from a seed (no files).

Each probe is a sequence-classification task over a small symbol vocabulary that isolates
one use of position:

=================  ==========================================  ==============================
probe              label                                       what it tests
=================  ==========================================  ==============================
``copy_offset``    the symbol ``offset`` positions before [Q]  a fixed relative offset
``local_ngram``    does the ordered trigram 3 4 5 occur?       local order (a small kernel)
``brackets``       was one bracket flipped?                    counting: equal numbers of
                                                               opening and closing brackets
                                                               decide it, no order needed
``assoc_recall``   the value stored with the queried key       binding by adjacency: a value
                                                               belongs to the key just
                                                               before it
=================  ==========================================  ==============================

:func:`position_free_baseline` scores what a model that sees only the multiset of tokens can
do on each probe; it is the chance level a probe result has to beat to say anything about
positions.

Token ids: 0 = [PAD], 1 = [CLS], 2 = [Q]; symbols start at 3.  ``length`` counts the
symbols after [CLS], so a train-short / test-long split is ``make_probe(..., length=32)``
for training and ``length=128`` for testing.
"""
from __future__ import annotations

import torch

PAD, CLS, QUERY, FIRST_SYMBOL = 0, 1, 2, 3
PROBES = ("copy_offset", "local_ngram", "brackets", "assoc_recall")



def vocab_size(symbols: int = 16) -> int:
    return FIRST_SYMBOL + symbols


def make_probe(name: str, n: int, length: int, seed: int = 0, symbols: int = 16, offset: int = 3):
    """``(ids (n, length + 1), labels (n,), n_classes)`` for one probe."""
    if name not in PROBES:
        raise ValueError(f"unknown probe {name!r}; the probes are {', '.join(PROBES)}")
    if length < 8:
        raise ValueError(f"probe sequences need length >= 8, got {length}")
    g = torch.Generator().manual_seed(seed)
    rand = lambda *shape, high=symbols: torch.randint(high, shape, generator=g)  # noqa: E731
    seq = FIRST_SYMBOL + rand(n, length)
    if name == "copy_offset":
        if not 1 <= offset < length - 1:
            raise ValueError(f"offset must be in [1, length - 2], got {offset}")
        where = offset + rand(n, high=length - offset - 1)          # position of [Q]
        seq[torch.arange(n), where] = QUERY
        labels = seq[torch.arange(n), where - offset] - FIRST_SYMBOL
        classes = symbols
    elif name == "local_ngram":
        # never an accidental 3 4 5: symbol 4 is only placed by the generator
        seq = torch.where(seq == FIRST_SYMBOL + 1, seq + 2, seq)
        labels = rand(n, high=2)
        start = rand(n, high=length - 2)
        # negatives hold the same three symbols in an order that cannot join a neighbour
        # into 3 4 5 (4 appears nowhere else)
        negatives = torch.tensor([[5, 4, 3], [3, 5, 4]])
        for i in range(n):
            trigram = torch.tensor([3, 4, 5]) if labels[i] else negatives[int(rand(1, high=2))]
            seq[i, start[i]:start[i] + 3] = trigram
        classes = 2
    elif name == "brackets":
        labels = rand(n, high=2)
        opening, closing = FIRST_SYMBOL, FIRST_SYMBOL + 1
        for i in range(n):
            depth, row = 0, []
            for t in range(length):
                left = length - t
                if depth == left or (depth > 0 and torch.rand(1, generator=g) < 0.5):
                    row.append(closing)
                    depth -= 1
                else:
                    row.append(opening)
                    depth += 1
            row = torch.tensor(row)
            if not labels[i]:                    # flip one bracket: the counts no longer balance
                j = int(rand(1, high=length))
                row[j] = opening + closing - row[j]
            seq[i] = row
        classes = 2
    else:  # assoc_recall: k1 v1 k2 v2 ... [Q] k -> v ; keys are unique within a sequence
        pairs = (length - 2) // 2
        half = symbols // 2
        if pairs > half:
            raise ValueError(f"assoc_recall has {half} keys; use length <= {2 * half + 2}")
        keys = torch.stack([torch.randperm(half, generator=g)[:pairs] for _ in range(n)])
        values = half + rand(n, pairs, high=symbols - half)
        seq = torch.full((n, length), FIRST_SYMBOL + symbols - 1)
        seq[:, 0:2 * pairs:2] = FIRST_SYMBOL + keys
        seq[:, 1:2 * pairs:2] = FIRST_SYMBOL + values
        pick = rand(n, high=pairs)
        seq[:, -2] = QUERY
        seq[:, -1] = FIRST_SYMBOL + keys[torch.arange(n), pick]
        labels = values[torch.arange(n), pick] - half
        classes = symbols - half
    ids = torch.cat([torch.full((n, 1), CLS), seq], dim=1)
    return ids, labels.long(), classes


def position_free_baseline(name: str, ids: torch.Tensor, labels: torch.Tensor, symbols: int = 16) -> float:
    """Accuracy of the best simple rule that sees each sequence as a bag of tokens:

    * ``copy_offset``: the most frequent symbol of the bag (the answer is one of its symbols);
    * ``local_ngram``: positives and negatives hold the same three symbols, so the bag says
      nothing: the majority label;
    * ``brackets``: "balanced" exactly when the numbers of opening and closing brackets are
      equal -- a flip always breaks that, so counting solves the probe;
    * ``assoc_recall``: the most frequent value symbol of the bag (which value goes with the
      queried key is only known from adjacency).
    Ties go to the smallest symbol."""
    ids, labels = ids.long(), labels.long()
    counts = torch.stack([torch.bincount(row, minlength=FIRST_SYMBOL + symbols) for row in ids])
    if name == "copy_offset":
        pred = counts[:, FIRST_SYMBOL:FIRST_SYMBOL + symbols].argmax(1)
    elif name == "local_ngram":
        pred = torch.full_like(labels, int(torch.mode(labels).values))
    elif name == "brackets":
        pred = (counts[:, FIRST_SYMBOL] == counts[:, FIRST_SYMBOL + 1]).long()
    elif name == "assoc_recall":
        half = symbols // 2
        values = counts[:, FIRST_SYMBOL + half:FIRST_SYMBOL + symbols].clone()
        length = ids.shape[1] - 1
        values[:, -1] -= length - 2 - 2 * ((length - 2) // 2)      # the filler symbol
        pred = values.argmax(1)
    else:
        raise ValueError(f"unknown probe {name!r}; the probes are {', '.join(PROBES)}")
    return (pred == labels).float().mean().item()
