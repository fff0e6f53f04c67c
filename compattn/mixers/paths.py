"""The one place that decides how softmax attention is computed.

Every attention variant hands the same description of its logits to :func:`attend`:

    s_ij = q_i . k_j * scale  +  Q[i, c(j - i)]  +  K[j, c(i - j)]        c(r) = clip(r, -ℓ, ℓ) + ℓ

with ``per_query`` Q (B|1, H, T|1, 2ℓ+1) read at the offset seen from the query, ``per_key`` K
(B|1, H, T, 2ℓ+1) read at the offset seen from the key, both optional; ``band=True`` gives
offsets beyond ±ℓ the logit ``-inf`` (attention restricted to a window); padded keys
(``pad_mask`` False) get ``-inf``.  A position term that is one number per offset (T5, ALiBi,
KERPLE) is a ``per_query`` table of one row per head with ℓ = T - 1.

Four paths compute that same function:

* ``plain``  the (B, H, T, T) logits, a softmax, a matmul -- the reference, and the mixing
             matrix;
* ``sdpa``   PyTorch's fused ``scaled_dot_product_attention`` with the placed tables as a float
             mask (the only fused path with attention dropout);
* ``block``  block-by-block over query rows, keeping no (T, T) matrix for the backward pass
             (``chunked.py``);
* ``flex``   FlexAttention reading the tables inside its fused kernel (``flex.py``; CUDA).

All four agree on the corner cases: a row with no allowed key (a padded query whose window
holds only padding) gives zeros, never NaN, and padded query rows of the output are zero.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ..positions import place_band, place_clipped
from .chunked import chunked_relative_attention
from .flex import flex_available, flex_relative_attention

PATHS = ("plain", "sdpa", "block", "flex")

#: from this length on, a windowed position term on a CPU uses the block path
BLOCK_FROM = 1024


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


def _autocast(device: torch.device) -> bool:
    try:
        return torch.is_autocast_enabled(device.type)
    except TypeError:                          # a torch without the device argument
        return torch.is_autocast_enabled()


def attend(q, k, v, *, per_query=None, per_key=None, pad_mask=None, scale: float,
           max_rel: int = 0, band: bool = False, dropout: float = 0.0,
           training: bool = False, path: str = "auto") -> torch.Tensor:
    """softmax(q k^T scale + placed tables, padded keys and the window masked) @ v.

    ``q``, ``k`` (B, H, T, d) or ``None`` (no content term: zeros are used); ``v``
    (B, H, T, d_v).  Returns (B, H, T, d_v) with padded query rows zero.  ``path``:
    ``"auto"`` (see :func:`choose_path`) or one of :data:`PATHS`.
    """
    B, H, T, _ = v.shape
    if q is None:                              # a pure position kernel
        q = k = torch.zeros_like(v)
    tables = per_query is not None or per_key is not None or band
    dropout_active = training and dropout > 0
    if path == "auto":
        path = choose_path(device=v.device, dtype=v.dtype, T=T, tables=tables,
                           window=tables and max_rel < T - 1, dropout=dropout,
                           training=training)
    elif path not in PATHS:
        raise ValueError(f"path must be 'auto' or one of {PATHS}, got {path!r}")
    elif dropout_active and path in ("block", "flex"):
        raise ValueError(f"the {path!r} path has no attention dropout; use path='sdpa', "
                         "'plain' or 'auto' while training with dropout > 0")
    if path == "plain":
        scores = logits(q, k, per_query, per_key, scale, max_rel, band)
        weights = safe_softmax(scores, pad_mask)
        out = F.dropout(weights, dropout, training) @ v
    elif path == "sdpa":
        out = _sdpa(q, k, v, per_query, per_key, pad_mask, scale, max_rel, band,
                    dropout if training else 0.0)
    elif path == "block":
        out = chunked_relative_attention(q, k, v, per_query, per_key, pad_mask, scale=scale,
                                         max_rel=max_rel, band=band)
    else:
        if not flex_available():
            raise ValueError("path='flex' needs torch >= 2.6 (FlexAttention)")
        out = flex_relative_attention(q, k, v, per_query, per_key, pad_mask, scale=scale,
                                      max_rel=max_rel, band=band)
    return zero_padded_rows(out, pad_mask)


def position_bias(per_query, per_key, T: int, max_rel: int, band: bool, device=None):
    """The tables (and the window) placed into (B|1, H|1, T, T) logits, or ``None``."""
    def place(table):
        if band:
            return place_band(table, max_rel, outside=float("-inf"))
        return place_clipped(table, max_rel)

    bias = None
    if per_query is not None:
        bias = place(per_query.expand(*per_query.shape[:2], T, per_query.shape[-1]))
    if per_key is not None:
        # generated at key j, read at offset i - j: place as rows of keys, then transpose
        by_key = place(per_key).transpose(-1, -2)
        bias = by_key if bias is None else bias + by_key
    if bias is None and band:                  # the window applies without any table
        zeros = torch.zeros(1, 1, T, 2 * max_rel + 1, device=device)
        bias = place_band(zeros, max_rel, outside=float("-inf"))
    return bias


def logits(q, k, per_query, per_key, scale, max_rel, band):
    """(B, H, T, T) logits before masking: content plus the placed tables."""
    scores = (q @ k.transpose(-1, -2)) * scale
    bias = position_bias(per_query, per_key, q.shape[2], max_rel, band, q.device)
    return scores if bias is None else scores + bias.to(scores.dtype)


def allowed(pad_mask):
    """(B, 1, T, T) True where query i (real) may look at key j (real); ``None`` without
    padding."""
    if pad_mask is None:
        return None
    return pad_mask[:, None, :, None] & pad_mask[:, None, None, :]


def safe_softmax(scores: torch.Tensor, pad_mask: torch.Tensor | None) -> torch.Tensor:
    """Softmax over keys of logits with padded keys and padded queries masked; a row with no
    allowed key (all ``-inf``) gives zeros, not NaN, in the forward and backward pass."""
    keep = allowed(pad_mask)
    if keep is not None:
        scores = scores.masked_fill(~keep, float("-inf"))
    dead = (scores == float("-inf")).all(-1, keepdim=True)
    weights = F.softmax(scores.masked_fill(dead, 0.0), dim=-1)
    return weights.masked_fill(dead, 0.0)


def zero_padded_rows(out: torch.Tensor, pad_mask: torch.Tensor | None) -> torch.Tensor:
    """(B, H, T, d) with the rows of padded positions set to zero."""
    return out if pad_mask is None else out.masked_fill(~pad_mask[:, None, :, None], 0.0)


def _sdpa(q, k, v, per_query, per_key, pad_mask, scale, max_rel, band, dropout):
    T = q.shape[2]
    bias = position_bias(per_query, per_key, T, max_rel, band, q.device)
    mask = None
    if bias is not None:
        mask = bias.to(q.dtype)
    if pad_mask is not None:
        keys = pad_mask[:, None, None, :]
        mask = keys if mask is None else mask.masked_fill(~keys, float("-inf"))
        if band:
            # a padded query may then see no key at all; let it see every key instead (its
            # row is zeroed afterwards): fused kernels differ on rows that are all -inf
            mask = mask.masked_fill(~pad_mask[:, None, :, None], 0.0)
    return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=dropout,
                                          scale=scale)


__all__ = ["attend", "choose_path", "PATHS", "BLOCK_FROM", "safe_softmax", "position_bias",
           "zero_padded_rows"]
