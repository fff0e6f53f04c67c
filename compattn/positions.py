"""Position machinery shared by every variant.

Every relative scheme in this library is a *score term* indexed by the offset
``r = j - i`` (key position minus query position).  A term that depends on at most one of
the two tokens is first computed on the ``2ℓ + 1`` offsets it can take, as a small
``(..., T, 2ℓ+1)`` table, and only then placed into the ``(T, T)`` score matrix:

* :func:`place_clipped` gathers it: entry ``(i, j)`` reads column ``clip(j - i) + ℓ``, so
  offsets beyond ``±ℓ`` reuse the edge columns (Shaw et al.; Chang et al.'s code);
* :func:`place_band` writes it as a band: entries with ``|j - i| > ℓ`` are ``outside``
  (0 for a convolution's weights, ``-inf`` for logits), as in Wu et al.'s convolutions.

No ``(T, T, d)`` tensor is ever built: the only ``d``-sized work is a ``(T, d) @ (d, 2ℓ+1)``
matmul done by the caller.
"""
from __future__ import annotations

import math

import torch


def relative_offsets(T: int, device=None) -> torch.Tensor:
    """``(T, T)`` integer matrix with entry ``(i, j) = j - i``."""
    pos = torch.arange(T, device=device)
    return pos[None, :] - pos[:, None]


def clipped_index(T: int, max_rel: int, device=None) -> torch.Tensor:
    """``(T, T)`` index ``clip(j - i, -ℓ, ℓ) + ℓ`` into a table of ``2ℓ + 1`` offsets
    (ℓ = ``max_rel``)."""
    return relative_offsets(T, device).clamp(-max_rel, max_rel) + max_rel


def place_clipped(table: torch.Tensor, max_rel: int) -> torch.Tensor:
    """Place a ``(..., T, 2ℓ+1)`` table of per-offset terms into ``(..., T, T)``.

    Row ``i`` of the table belongs to query ``i``; entry ``(i, j)`` of the result is
    ``table[..., i, clip(j - i) + ℓ]``.  For a key-based term (row ``j`` belongs to key
    ``j``, indexed by ``i - j``) transpose the result: ``place_clipped(t, max_rel).mT``.
    """
    T = table.shape[-2]
    index = clipped_index(T, max_rel, table.device).expand(*table.shape[:-2], T, T)
    return torch.gather(table, -1, index)


def place_band(table: torch.Tensor, max_rel: int, outside: float = 0.0) -> torch.Tensor:
    """Like :func:`place_clipped`, but offsets beyond ``±ℓ`` get ``outside``.

    With ``outside=0`` and a table of kernel weights this is the band (Toeplitz when the
    kernel does not depend on ``i``) matrix of a zero-padded 1-D convolution.
    """
    T = table.shape[-2]
    offsets = relative_offsets(T, table.device)
    placed = place_clipped(table, max_rel)
    return placed.masked_fill(offsets.abs() > max_rel, outside)


def t5_bucket(relative_position: torch.Tensor, bidirectional: bool = True,
              num_buckets: int = 32, max_distance: int = 128) -> torch.Tensor:
    """T5's log-bucketing of ``relative_position = j - i`` (Raffel et al. 2020).

    Half of the buckets (per direction) hold exact offsets ``0 .. max_exact - 1``; the rest
    grow logarithmically up to ``max_distance``; everything farther shares the last bucket.
    Same arithmetic as ``T5Attention._relative_position_bucket`` in Hugging Face.
    """
    buckets = torch.zeros_like(relative_position)
    if bidirectional:
        num_buckets //= 2
        buckets = buckets + (relative_position > 0).long() * num_buckets
        n = relative_position.abs()
    else:
        n = (-relative_position).clamp(min=0)
    max_exact = num_buckets // 2
    is_small = n < max_exact
    # float32 on purpose: the logarithm must give the same buckets in every dtype
    log_ratio = torch.log(n.float().clamp(min=1) / max_exact) / math.log(max_distance / max_exact)
    large = max_exact + (log_ratio * (num_buckets - max_exact)).long()
    large = large.clamp(max=num_buckets - 1)
    return buckets + torch.where(is_small, n, large)


def alibi_slopes(n_heads: int) -> torch.Tensor:
    """ALiBi's head slopes ``m_h`` (Press et al. 2022), geometric from ``2^(-8/n)``.

    For a head count that is not a power of two: the slopes of the closest lower power of
    two, then every other slope of the next power of two (the authors' ``get_slopes``).
    """
    def power_of_two(n):
        start = 2.0 ** (-(2.0 ** -(math.log2(n) - 3)))
        return [start * start ** i for i in range(n)]

    if math.log2(n_heads).is_integer():
        slopes = power_of_two(n_heads)
    else:
        lower = 2 ** math.floor(math.log2(n_heads))
        slopes = power_of_two(lower) + power_of_two(2 * lower)[0::2][: n_heads - lower]
    return torch.tensor(slopes)


def rotary_angles(T: int, dim: int, base: float = 10000.0, device=None):
    """``cos`` and ``sin`` of the rotary angles ``m * theta_t``, each ``(T, dim)``.

    ``theta_t = base^(-2t/dim)``; the layout is split-half (``rotate_half``), as in
    GPT-NeoX and Hugging Face's RoFormer/LLaMA code.
    """
    if dim % 2:
        raise ValueError(f"rotary embeddings need an even head size, got {dim}")
    inv_freq = base ** (-torch.arange(0, dim, 2, device=device, dtype=torch.float32) / dim)
    angles = torch.arange(T, device=device, dtype=torch.float32)[:, None] * inv_freq[None, :]
    angles = torch.cat([angles, angles], dim=-1)
    return angles.cos(), angles.sin()


def rotate(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate ``x`` (..., T, dim) by the angles whose ``cos``/``sin`` are given."""
    half = x.shape[-1] // 2
    rotated_half = torch.cat([-x[..., half:], x[..., :half]], dim=-1)
    return x * cos.to(x.dtype) + rotated_half * sin.to(x.dtype)
