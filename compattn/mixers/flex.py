"""FlexAttention path: the (T, 2k+1) tables are read inside the fused attention kernel.

On a GPU, PyTorch's FlexAttention compiles a ``score_mod`` -- a function of one logit and its
indices (b, h, i, j) -- into a FlashAttention-style kernel, forward and backward, and it
differentiates through tensors the function reads.  So every position term that is a table
indexed by the offset becomes one lookup per logit, with no (T, T) matrix in memory:

    score_mod(s, b, h, i, j) = s + Q[b, h, i, c(j - i)] + K[b, h, j, c(i - j)]

(``c(r) = clip(r, -k, k) + k``), plus ``-inf`` for padded keys and, with ``band``, for offsets
beyond ±k.  T5's bucket biases are the same thing with one row per head and k = T - 1.

Selected automatically on CUDA (``Attention.flex``); FlexAttention has no backward pass on a
CPU, where ``chunked.py`` and the plain path are used instead.  On a CPU the forward pass runs
(unfused), which is how the tests check that the ``score_mod`` gives the reference numbers.
"""
from __future__ import annotations

import torch

_compiled_flex = None


def flex_available() -> bool:
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
        _compiled_flex = torch.compile(flex_attention, dynamic=False)
    return _compiled_flex


def flex_relative_attention(q, k, v, per_query=None, per_key=None, pad_mask=None, *, scale: float, max_rel: int,
                            band: bool = False, compiled: bool | None = None):
    """softmax(q k^T scale + placed tables) @ v by FlexAttention; same arguments as
    :func:`compattn.mixers.chunked.chunked_relative_attention`.  ``compiled`` defaults to
    ``q.is_cuda``."""
    B, H, T, _ = q.shape
    # broadcast tables (the fixed kernel: one row per head) are made full-size, O(T k)
    if per_query is not None:
        per_query = per_query.expand(B, H, T, per_query.shape[-1]).contiguous()
    if per_key is not None:
        per_key = per_key.expand(B, H, T, per_key.shape[-1]).contiguous()
    negative_infinity = torch.tensor(float("-inf"), dtype=q.dtype, device=q.device)

    def score_mod(score, b, h, i, j):
        offset = j - i
        if per_query is not None:
            score = score + per_query[b, h, i, offset.clamp(-max_rel, max_rel) + max_rel]
        if per_key is not None:
            score = score + per_key[b, h, j, (-offset).clamp(-max_rel, max_rel) + max_rel]
        if band:
            score = torch.where(offset.abs() <= max_rel, score, negative_infinity)
        if pad_mask is not None:
            score = torch.where(pad_mask[b, j], score, negative_infinity)
        return score

    attention = _attention_fn(q.is_cuda if compiled is None else compiled)
    return attention(q, k, v, score_mod=score_mod, scale=scale)


__all__ = ["flex_relative_attention", "flex_available"]
