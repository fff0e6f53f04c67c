"""The one place that decides how softmax attention is computed.

Every attention variant describes its logits once, as a :class:`Scores` record:

    s_ij = q_i . k_j * scale  +  Q[i, c(j - i)]  +  K[j, c(i - j)]        c(r) = clip(r, -ℓ, ℓ) + ℓ

with ``per_query`` Q (B|1, H, T|1, 2ℓ+1) read at the offset seen from the query, ``per_key`` K
(B|1, H, T, 2ℓ+1) read at the offset seen from the key, both optional, and no content term when
``q`` is ``None``; ``band=True`` gives offsets beyond ±ℓ the logit ``-inf`` (attention restricted
to a window); padded keys (``pad_mask`` False) get ``-inf``.  A position term that is one number
per offset (T5, ALiBi, KERPLE) is a ``per_query`` table of one row per head with ℓ = T - 1.

:func:`logits` and :func:`weights` turn a record into logits and softmax weights (the mixing
matrix); :func:`attend` multiplies the weights with the values on one of four paths that
compute the same function:

* ``plain``  the (B, H, T, T) :func:`weights`, then a matmul -- the reference;
* ``sdpa``   PyTorch's fused ``scaled_dot_product_attention`` with the same :func:`bias` as a
             float mask (the only fused path with attention dropout);
* ``block``  block-by-block over query rows, keeping no (T, T) matrix for the backward pass
             (``chunked.py``);
* ``flex``   FlexAttention reading the tables inside its fused kernel (``flex.py``; CUDA).

All four agree on the corner cases: a row with no allowed key (a padded query whose window
holds only padding) gives zeros, never NaN, and padded query rows of the output are zero.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..positions import clipped_index, place_band, place_clipped
from .base import _autocast, check_not_empty, zero_padded_rows
from .chunked import chunked_relative_attention
from .flex import flex_available, flex_relative_attention

PATHS = ("plain", "sdpa", "block", "flex")

#: from this length on, a windowed position term on a CPU uses the block path
BLOCK_FROM = 1024


@dataclass(frozen=True)
class Scores:
    """What the logits of one attention layer are made of (see the module docstring)."""
    T: int                                     # sequence length
    q: torch.Tensor | None = None              # (B, H, T, d); None: no content term
    k: torch.Tensor | None = None              # (B, H, T, d); None exactly when q is
    scale: float = 1.0                         # of the content term only
    per_query: torch.Tensor | None = None      # (B|1, H, T|1, 2ℓ+1), read at c(j - i) of row i
    per_key: torch.Tensor | None = None        # (B|1, H, T, 2ℓ+1), read at c(i - j) of row j
    max_rel: int = 0                           # ℓ
    band: bool = False                         # -inf beyond ±ℓ instead of the edge entry
    pad_mask: torch.Tensor | None = None       # (B, T), True for real tokens

    def __post_init__(self):
        if self.q is None and self.per_query is None and self.per_key is None:
            raise ValueError("logits without a content term need a position table")


def choose_path(*, device: torch.device, dtype: torch.dtype, T: int, tables: bool,
                window: bool, dropout: float, training: bool) -> str:
    """The path :func:`attend` takes when none is forced.

    ``tables``: the position term is offset tables; ``window``: their ±ℓ is smaller than
    the sequence (composite, shaw), not one entry per offset (t5, alibi, kerple).
    """
    if training and dropout > 0:
        return "sdpa"                          # the only fused path with attention dropout
    if tables and device.type == "cuda" and flex_available():
        return "flex"                          # tables read inside the fused kernel
    full_precision = dtype in (torch.float32, torch.float64)
    if (window and T >= BLOCK_FROM and full_precision and not _autocast(device)
            and not torch.compiler.is_compiling()):
        return "block"                         # O(T) saved memory; the compiler fuses `sdpa`
    return "sdpa"


def check_path(path: str, dropout: float) -> None:
    """What a mixer's ``path`` option cannot be combined with, checked when it is built.

    Where the mixer will run is not known then (it is built on a CPU and moved): FlexAttention's
    missing backward pass on a CPU is refused by :func:`attend` when gradients are asked for,
    while its forward pass there, unfused, is how a CPU checks the ``score_mod``.
    """
    if path in ("block", "flex") and dropout > 0:
        raise ValueError(f"the {path!r} path has no attention dropout; build with path='sdpa', "
                         "'plain' or 'auto', or with dropout=0")
    if path == "flex" and not flex_available():
        raise ValueError("path='flex' needs FlexAttention (torch >= 2.6); use path='auto', 'plain', "
                         "'sdpa' or 'block'")


def attend(s: Scores, v: torch.Tensor, *, dropout: float = 0.0, training: bool = False,
           path: str = "auto", relative_values: torch.Tensor | None = None) -> torch.Tensor:
    """``weights(s) @ v``, on ``path`` (``"auto"``: see :func:`choose_path`; or one of
    :data:`PATHS`).  ``v`` (B, H, T, d_v); returns (B, H, T, d_v), padded query rows zero.

    ``relative_values`` (2ℓ+1, d_v), Shaw et al.'s a^V: adds ``sum_j w_ij a^V[c(j - i)]`` to
    each row, from the (T, 2ℓ+1) totals of the weights per offset (the plain path only).
    """
    B, H, T, _ = v.shape
    check_not_empty(B, T)
    dropout_active = training and dropout > 0
    if path == "auto":
        tables = s.per_query is not None or s.per_key is not None or s.band
        path = "plain" if relative_values is not None else choose_path(
            device=v.device, dtype=v.dtype, T=T, tables=tables, window=tables and s.max_rel < T - 1,
            dropout=dropout, training=training)
    elif path not in PATHS:
        raise ValueError(f"path must be 'auto' or one of {PATHS}, got {path!r}")
    elif dropout_active and path in ("block", "flex"):
        raise ValueError(f"the {path!r} path has no attention dropout; use path='sdpa', "
                         "'plain' or 'auto' while training with dropout > 0")
    elif relative_values is not None and path != "plain":
        raise ValueError(f"relative_values need the plain path, got path={path!r}")
    if path == "plain":
        w = F.dropout(weights(s), dropout, training)
        out = w @ v
        if relative_values is not None:
            out = out + offset_totals(w, s.max_rel) @ relative_values
    elif path == "sdpa":
        q, k = content_or_zeros(s, v)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=_sdpa_mask(s, q.dtype, q.device),
                                             dropout_p=dropout if training else 0.0, scale=s.scale)
    elif path == "block":
        out = chunked_relative_attention(s, v)
    else:
        if not v.is_cuda and torch.is_grad_enabled() and any(
                t is not None and t.requires_grad for t in (s.q, s.k, v, s.per_query, s.per_key)):
            raise ValueError("FlexAttention has no backward pass on a CPU: move the mixer to a CUDA "
                             "device, use another path, or run under torch.no_grad() (forward only)")
        out = flex_relative_attention(s, v)
    return zero_padded_rows(out, s.pad_mask)


def content_or_zeros(s: Scores, v: torch.Tensor):
    """``(q, k)`` for the fused kernels, which always compute a content term: zeros without one.
    Two tensors, never one aliased as both: FlexAttention's recompile check fails on that."""
    if s.q is not None:
        return s.q, s.k
    return torch.zeros_like(v), torch.zeros_like(v)


def position_bias(s: Scores, device=None) -> torch.Tensor | None:
    """The tables (and the window) placed into (B|1, H|1, T, T) logits, or ``None``."""
    def place(table):
        if s.band:
            return place_band(table, s.max_rel, outside=float("-inf"))
        return place_clipped(table, s.max_rel)

    bias = None
    if s.per_query is not None:
        bias = place(s.per_query.expand(*s.per_query.shape[:2], s.T, s.per_query.shape[-1]))
    if s.per_key is not None:
        # generated at key j, read at offset i - j: place as rows of keys, then transpose
        by_key = place(s.per_key).transpose(-1, -2)
        bias = by_key if bias is None else bias + by_key
    if bias is None and s.band:                # the window applies without any table
        zeros = torch.zeros(1, 1, s.T, 2 * s.max_rel + 1, device=device)
        bias = place_band(zeros, s.max_rel, outside=float("-inf"))
    return bias


def bias(s: Scores, dtype: torch.dtype, device) -> torch.Tensor | None:
    """Everything in the logits but the content term, (B|1, H|1, T, T): the placed tables,
    ``-inf`` beyond the window and at padded keys; ``None`` when there is nothing."""
    placed = position_bias(s, device)
    placed = None if placed is None else placed.to(dtype)
    if s.pad_mask is None:
        return placed
    keys = s.pad_mask[:, None, None, :]
    if placed is None:
        placed = torch.zeros(keys.shape, dtype=dtype, device=device)
    return placed.masked_fill(~keys, float("-inf"))


def logits(s: Scores) -> torch.Tensor:
    """(B|1, H|1, T, T) logits: the content term plus :func:`bias`."""
    if s.q is None:
        table = s.per_query if s.per_query is not None else s.per_key
        return bias(s, table.dtype, table.device)
    content = (s.q @ s.k.transpose(-1, -2)) * s.scale
    rest = bias(s, content.dtype, content.device)
    return content if rest is None else content + rest


def weights(s: Scores) -> torch.Tensor:
    """Softmax over keys of :func:`logits`, the mixing matrix: padded query rows, and a row with
    no allowed key (all ``-inf``), are zeros, not NaN, in the forward and backward pass."""
    scores = logits(s)
    if s.pad_mask is not None:
        scores = scores.masked_fill(~s.pad_mask[:, None, :, None], float("-inf"))
    dead = (scores == float("-inf")).all(-1, keepdim=True)
    return F.softmax(scores.masked_fill(dead, 0.0), dim=-1).masked_fill(dead, 0.0)


def offset_totals(w: torch.Tensor, max_rel: int) -> torch.Tensor:
    """(..., T, 2ℓ+1): the weight each row of ``w`` (..., T, T) puts on each clipped offset."""
    index = clipped_index(w.shape[-1], max_rel, w.device).expand_as(w)
    return w.new_zeros(*w.shape[:-1], 2 * max_rel + 1).scatter_add(-1, index, w)


def _sdpa_mask(s: Scores, dtype, device):
    """:func:`bias` for the fused kernel, which is never given a row of only ``-inf``: the CPU
    kernel returns zeros for it, fused CUDA kernels need not.  Such a row belongs to a padded
    query, whose output is zeroed afterwards, so a padded query whose window holds only padding
    sees every key instead, and so does every query of a sequence that is all padding (which
    the input check lets through on a GPU; the key mask then stays a cheap (B, 1, 1, T))."""
    if s.pad_mask is None:
        return bias(s, dtype, device)
    if s.band:
        return bias(s, dtype, device).masked_fill(~s.pad_mask[:, None, :, None], 0.0)
    keys = (s.pad_mask | ~s.pad_mask.any(-1, keepdim=True))[:, None, None, :]
    placed = position_bias(s, device)
    return keys if placed is None else placed.to(dtype).masked_fill(~keys, float("-inf"))


__all__ = ["Scores", "attend", "logits", "weights", "bias", "choose_path", "check_path", "PATHS",
           "BLOCK_FROM", "position_bias", "offset_totals"]
