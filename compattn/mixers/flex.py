"""FlexAttention path: the (T, 2ℓ+1) tables are read inside the fused attention kernel.

On a GPU, PyTorch's FlexAttention compiles a ``score_mod`` -- a function of one logit and its
indices (b, h, i, j) -- into a FlashAttention-style kernel, forward and backward, and it
differentiates through tensors the function reads.  So every position term that is a table
indexed by the offset becomes one lookup per logit, with no (T, T) matrix in memory:

    score_mod(s, b, h, i, j) = s + Q[b, h, i, c(j - i)] + K[b, h, j, c(i - j)]

(``c(r) = clip(r, -ℓ, ℓ) + ℓ``), plus ``-inf`` for padded keys and, with ``band``, for offsets
beyond ±ℓ.  T5's bucket biases are the same thing with one row per head and ℓ = T - 1.

Chosen automatically on CUDA with torch >= 2.6 (``paths.choose_path``); FlexAttention has no backward pass on a
CPU, where ``chunked.py`` and the plain path are used instead.  On a CPU the forward pass runs
(unfused), which is how the tests check that the ``score_mod`` gives the reference numbers.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from .paths import Scores

_compiled_flex = None


def flex_available() -> bool:
    """FlexAttention with gradients of captured tables: torch >= 2.6."""
    version = tuple(int(part) for part in torch.__version__.split("+")[0].split(".")[:2])
    if version < (2, 6):
        return False
    try:
        from torch.nn.attention import flex_attention  # noqa: F401
    except ImportError:
        return False
    return True


def _attention_fn(compiled: bool):
    from torch.nn.attention.flex_attention import flex_attention

    global _compiled_flex
    if not compiled:
        return flex_attention
    if _compiled_flex is None:       # FlexAttention is fused only when compiled
        # automatic dynamic shapes (not dynamic=False): the first length compiles a static
        # kernel, a second length recompiles once with the lengths symbolic, so length-sorted
        # evaluation batches do not recompile per length
        _compiled_flex = torch.compile(flex_attention, dynamic=None)
    return _compiled_flex


def score_mod_for(s: "Scores"):
    """The ``score_mod`` that adds the tables of ``s`` (a ``paths.Scores`` record), masks the
    window and padded keys.

    It captures the tables as they are: a table of size 1 along the batch, head or time
    dimension is indexed with 0 there, never expanded -- T5's (1, H, 1, 2T-1) per-offset bias
    stays O(H T), a fixed kernel (1, H, 1, 2ℓ+1) O(H ℓ).  A padded query sees every key
    (its output row is zeroed by the caller), so no row is all ``-inf``.
    """
    def reader(table):
        if table is None:
            return None
        batched, headed, timed = (n > 1 for n in table.shape[:3])

        def read(b, h, t, r):
            return table[b if batched else 0, h if headed else 0, t if timed else 0, r]
        return read

    read_query, read_key = reader(s.per_query), reader(s.per_key)
    max_rel, band, pad_mask = s.max_rel, s.band, s.pad_mask
    like = next(t for t in (s.per_query, s.per_key, s.q) if t is not None)
    negative_infinity = torch.tensor(float("-inf"), dtype=like.dtype, device=like.device)

    def score_mod(score, b, h, i, j):
        offset = j - i
        if read_query is not None:
            score = score + read_query(b, h, i, offset.clamp(-max_rel, max_rel) + max_rel)
        if read_key is not None:
            score = score + read_key(b, h, j, (-offset).clamp(-max_rel, max_rel) + max_rel)
        keep = None
        if band:
            keep = offset.abs() <= max_rel
        if pad_mask is not None:
            keep = pad_mask[b, j] if keep is None else keep & pad_mask[b, j]
            keep = keep | ~pad_mask[b, i]
        if keep is not None:
            score = torch.where(keep, score, negative_infinity)
        return score

    return score_mod


def flex_relative_attention(s: "Scores", v: torch.Tensor, compiled: bool | None = None) -> torch.Tensor:
    """``paths.weights(s) @ v`` (before the padded rows are zeroed) by FlexAttention;
    ``compiled`` defaults to ``v.is_cuda``."""
    from .paths import content_or_zeros

    q, k = content_or_zeros(s, v)
    attention = _attention_fn(v.is_cuda if compiled is None else compiled)
    return attention(q, k, v, score_mod=score_mod_for(s), scale=s.scale)


__all__ = ["flex_relative_attention", "flex_available", "score_mod_for"]
