"""Relative attention that never keeps a (T, T) matrix for the backward pass.

Composite attention's logits are content plus two (T, 2ℓ+1) tables placed into (T, T):

    s_ij = q_i . k_j * scale + Q[i, c(j - i)] + K[j, c(i - j)]         c(r) = clip(r, -ℓ, ℓ) + ℓ

The plain path builds s, softmaxes it and lets autograd keep the (B, H, T, T) probabilities --
at T = 2048 that is most of the memory of a training step.  Here, as in FlashAttention, the
forward pass runs over blocks of query rows and keeps only q, k, v, the two tables, the output
and each row's log-sum-exp; the backward pass rebuilds one block of probabilities at a time:

    p_ij  = exp(s_ij - lse_i)
    ds_ij = p_ij (do_i . v_j - do_i . o_i)
    dq_i  = scale sum_j ds_ij k_j          dk_j = scale sum_i ds_ij q_i       dv_j = sum_i p_ij do_i
    dQ[i, r] = sum_{j: c(j-i) = r} ds_ij   dK[j, r] = sum_{i: c(i-j) = r} ds_ij
               (row and column sums where the offset is clipped, scatter-adds inside the window)

The gradients of the tables flow on, through ordinary autograd, to whatever made them (the
(T, d) @ (d, 2ℓ+1) matmuls of the query- and key-based terms, or the fixed kernel).
Saved memory is O(T d + T ℓ) instead of O(T^2).  The blocks run in the input's precision, so the
layers use this path for float32 and float64 only.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from .paths import Scores

#: query rows per block: a block's (B, H, rows, T) logits hold about this many numbers
BLOCK_NUMBERS = 2 ** 24


def block_rows(batch_heads: int, T: int) -> int:
    return max(16, min(T, BLOCK_NUMBERS // max(1, batch_heads * T)))


class _ChunkedRelativeAttention(torch.autograd.Function):
    @staticmethod
    def forward(ctx, q, k, v, per_query, per_key, key_bias, scale, max_rel, band):
        # head-split views are strided; one copy here saves a copy per block in every matmul
        v = v.contiguous()
        if q is not None:                      # None: no content term
            q, k = q.contiguous(), k.contiguous()
        B, H, T, _ = v.shape
        rows = block_rows(B * H, T)
        out = torch.empty_like(v)
        lse = v.new_empty(B, H, T)
        for start in range(0, T, rows):
            stop = min(T, start + rows)
            # softmax in place on the block's logits: subtract the row max, exponentiate, normalise later
            p = _block_logits(q, k, v, per_query, per_key, key_bias, scale, max_rel, band, start, stop)
            # a row with no allowed key (all -inf) gives zeros: max 0, total 1, lse +inf
            row_max = p.amax(-1, keepdim=True)
            dead = row_max == float("-inf")
            row_max = row_max.masked_fill(dead, 0.0)
            total = p.sub_(row_max).exp_().sum(-1, keepdim=True).masked_fill_(dead, 1.0)
            out[:, :, start:stop] = (p @ v).div_(total)
            lse[:, :, start:stop] = (row_max + total.log()).masked_fill_(dead, float("inf")).squeeze(-1)
        ctx.save_for_backward(q, k, v, per_query, per_key, key_bias, out, lse)
        ctx.scale, ctx.max_rel, ctx.band, ctx.rows = scale, max_rel, band, rows
        return out

    @staticmethod
    def backward(ctx, grad_out):
        q, k, v, per_query, per_key, key_bias, out, lse = ctx.saved_tensors
        scale, max_rel, band, rows = ctx.scale, ctx.max_rel, ctx.band, ctx.rows
        grad_out = grad_out.contiguous()
        T = v.shape[2]
        dv = torch.zeros_like(v)
        dq, dk = (None, None) if q is None else (torch.zeros_like(q), torch.zeros_like(k))
        # table gradients at full batch size; broadcast tables are summed back at the end
        d_query = None if per_query is None else v.new_zeros(*v.shape[:3], per_query.shape[-1])
        d_key = None if per_key is None else v.new_zeros(*v.shape[:3], per_key.shape[-1])
        delta = (grad_out * out).sum(-1, keepdim=True)                      # do_i . o_i
        for start in range(0, T, rows):
            stop = min(T, start + rows)
            p = _block_logits(q, k, v, per_query, per_key, key_bias, scale, max_rel, band, start, stop)
            p = p.sub_(lse[:, :, start:stop, None]).exp_()
            g = grad_out[:, :, start:stop]
            dv += p.transpose(-1, -2) @ g
            ds = (g @ v.transpose(-1, -2)).sub_(delta[:, :, start:stop]).mul_(p)
            if q is not None:
                dq[:, :, start:stop] = (ds @ k).mul_(scale)
                dk += (ds.transpose(-1, -2) @ q[:, :, start:stop]).mul_(scale)
            _table_gradients(ds, d_query, d_key, max_rel, band, start, stop)
        if d_query is not None:
            d_query = _sum_to(d_query, per_query.shape).to(per_query.dtype)
        if d_key is not None:
            d_key = _sum_to(d_key, per_key.shape).to(per_key.dtype)
        return dq, dk, dv, d_query, d_key, None, None, None, None


def _band(T, max_rel, start, stop, device):
    """The columns a block's rows see inside the clip window, and the table columns they read.

    Keys left of ``lo`` are more than ℓ before every row of the block, keys from ``hi`` on more
    than ℓ after: their offsets all clip to an edge column.  Returns ``lo, hi``, the indices
    c(j - i) (rows, hi - lo) into per-query rows, c(i - j) (hi - lo, rows) into per-key rows, and
    the offsets j - i (rows, hi - lo).
    """
    lo, hi = max(0, start - max_rel), min(T, stop + max_rel)
    offsets = torch.arange(lo, hi, device=device)[None, :] - torch.arange(start, stop, device=device)[:, None]
    by_query = offsets.clamp(-max_rel, max_rel) + max_rel
    by_key = (-offsets.T).clamp(-max_rel, max_rel) + max_rel
    return lo, hi, by_query, by_key, offsets


def _block_logits(q, k, v, per_query, per_key, key_bias, scale, max_rel, band, start, stop):
    """Logits (B, H, rows, T) for query rows [start, stop), in a fresh tensor the caller may overwrite.

    Outside the band [lo, hi) every offset clips to an edge column, so the position terms there
    are a row term plus a column term (a broadcast add, no gather); inside it the two tables are
    gathered.  The content term is added last by one ``baddbmm``: on a CPU each pass over a
    (rows, T) block costs about as much as the matmul.
    """
    B, H, T, _ = v.shape
    rows, edge = stop - start, 2 * max_rel
    lo, hi, by_query, by_key, offsets = _band(T, max_rel, start, stop, v.device)
    bias = v.new_empty(B, H, rows, T)
    for cols, q_col, k_col in ((slice(0, lo), 0, edge), (slice(hi, T), edge, 0)):
        if band:
            bias[..., cols] = float("-inf")
            continue
        part = 0.0
        if per_query is not None:
            part = part + per_query[:, :, start:stop, q_col, None]        # (B|1, H, rows, 1)
        if per_key is not None:
            part = part + per_key[:, :, None, cols, k_col]                # (B|1, H, 1, cols)
        if key_bias is not None:
            part = part + key_bias[..., cols]
        bias[..., cols] = part
    middle = bias[..., lo:hi]
    if per_query is not None:
        table = per_query[:, :, start:stop]
        middle.copy_(torch.gather(table, -1, by_query.expand(*table.shape[:2], rows, hi - lo)))
    else:
        middle.zero_()
    if per_key is not None:
        table = per_key[:, :, lo:hi]
        middle.add_(torch.gather(table, -1, by_key.expand(*table.shape[:2], hi - lo, rows)).transpose(-1, -2))
    if band:
        middle.masked_fill_(offsets.abs() > max_rel, float("-inf"))
    if key_bias is not None:
        middle.add_(key_bias[..., lo:hi])
    if q is not None:
        d = q.shape[-1]
        bias.view(B * H, rows, T).baddbmm_(q[:, :, start:stop].reshape(B * H, rows, d),
                                           k.reshape(B * H, T, d).transpose(-1, -2), alpha=scale)
    return bias


def _table_gradients(ds, d_query, d_key, max_rel, band, start, stop):
    """Add a block's logit gradients ds (B, H, rows, T) to the tables' gradients (transposes of the
    gathers: sums over the clipped regions, scatter-adds inside the band)."""
    T, edge = ds.shape[-1], 2 * max_rel
    lo, hi, by_query, by_key, _ = _band(T, max_rel, start, stop, ds.device)
    middle = ds[..., lo:hi]
    if d_query is not None:
        rows_of = d_query[:, :, start:stop]
        if not band:      # with a band, ds is zero outside it
            rows_of[..., 0] += ds[..., :lo].sum(-1)
            rows_of[..., edge] += ds[..., hi:].sum(-1)
        rows_of.scatter_add_(-1, by_query.expand(*ds.shape[:2], *by_query.shape), middle)
    if d_key is not None:
        if not band:
            d_key[:, :, :lo, edge] += ds[..., :lo].sum(-2)
            d_key[:, :, hi:, 0] += ds[..., hi:].sum(-2)
        d_key[:, :, lo:hi].scatter_add_(-1, by_key.expand(*ds.shape[:2], *by_key.shape), middle.transpose(-1, -2))


def _sum_to(grad, shape):
    """Undo broadcasting: sum ``grad`` over the dimensions where ``shape`` has size 1."""
    dims = [d for d, n in enumerate(shape) if n == 1 and grad.shape[d] != 1]
    return grad.sum(dims, keepdim=True) if dims else grad


def chunked_relative_attention(s: "Scores", v: torch.Tensor) -> torch.Tensor:
    """``paths.weights(s) @ v`` (before the padded rows are zeroed), computed block by block
    with O(T) saved memory; ``s`` is a ``paths.Scores`` record."""
    per_query = s.per_query
    if per_query is not None:
        per_query = per_query.expand(per_query.shape[0], per_query.shape[1], s.T, per_query.shape[-1])
    # padding as an additive (B, 1, 1, T) term, 0 or -inf, made once for every block
    key_bias = None if s.pad_mask is None else torch.zeros(
        s.pad_mask.shape, dtype=v.dtype, device=v.device).masked_fill_(~s.pad_mask, float("-inf"))[:, None, None, :]
    return _ChunkedRelativeAttention.apply(s.q, s.k, v, per_query, s.per_key, key_bias, s.scale,
                                           s.max_rel, s.band)


__all__ = ["chunked_relative_attention", "block_rows", "BLOCK_NUMBERS"]
