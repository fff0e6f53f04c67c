"""Softmax attention and the position schemes that only add a term to its logits.

    alpha_ij = softmax_j( q_i . k_j / sqrt(d_head)  +  position_scores_ij )
    y_i      = sum_j alpha_ij v_j

``position_scores`` is where the variants differ: nothing (``absolute``, ``none``), a
per-head scalar on a log-bucketed offset (``t5``), a fixed linear penalty (``alibi``).
``rope`` instead rotates q and k.  Relative terms that depend on a token live in
``relative.py``.
"""
from __future__ import annotations

import torch
from torch import nn

from ..positions import alibi_slopes, rotary_angles, rotate, t5_bucket
from ..registry import register
from .base import Mixer, check_dropout, split_heads
from .paths import PATHS, attend, position_bias, safe_softmax


class Attention(Mixer):
    """Multi-head softmax attention; subclasses add a position term as ``offset_tables``.

    Options: ``content`` (keep the q.k term; switching it off leaves a pure position
    kernel), ``dropout`` (on the attention weights, training only), ``path`` (``"auto"``, or
    force one of ``paths.PATHS``: ``"plain"``, ``"sdpa"``, ``"block"``, ``"flex"``; every
    path computes the same function, see ``paths.py``).
    """

    def __init__(self, d_model, n_heads, max_len, *, content: bool = True, dropout: float = 0.0,
                 path: str = "auto"):
        super().__init__(d_model, n_heads, max_len)
        if path != "auto" and path not in PATHS:
            raise ValueError(f"path must be 'auto' or one of {PATHS}, got {path!r}")
        self.content, self.dropout, self.path = content, check_dropout(dropout), path
        if self.needs_queries_keys():
            self.query = nn.Linear(d_model, d_model)
            self.key = nn.Linear(d_model, d_model)
        self.value = nn.Linear(d_model, d_model)
        self.scale = self.d_head ** -0.5

    def needs_queries_keys(self) -> bool:
        return self.content

    def queries_keys(self, x, pad_mask):
        return split_heads(self.query(x), self.n_heads), split_heads(self.key(x), self.n_heads)

    def values(self, x, pad_mask=None):
        return split_heads(self.value(x), self.n_heads)

    def offset_tables(self, q, k, T: int):
        """The position term as ``(per_query, per_key, max_rel, band)`` (see ``paths.py``),
        or ``None`` without one.  ``q``/``k`` are ``None`` when the variant has none."""
        return None

    def _inputs(self, x, pad_mask):
        """Everything ``paths.attend`` needs but the values, as keyword arguments."""
        q, k = self.queries_keys(x, pad_mask) if self.needs_queries_keys() else (None, None)
        tables = self.offset_tables(q, k, x.shape[1])
        per_query, per_key, max_rel, band = tables if tables is not None else (None, None, 0, False)
        if not self.content:
            q = k = None
        return dict(q=q, k=k, per_query=per_query, per_key=per_key, pad_mask=pad_mask,
                    scale=self.scale, max_rel=max_rel, band=band)

    def position_scores(self, q, k, T: int):
        """The position term placed into (B|1, H, T, T) logits, or ``None``."""
        tables = self.offset_tables(q, k, T)
        if tables is None:
            return None
        per_query, per_key, max_rel, band = tables
        device = self.value.weight.device
        return position_bias(per_query, per_key, T, max_rel, band, device)

    def logits(self, x, pad_mask=None):
        """(B, H, T, T) logits before the softmax: content plus the placed position term
        (``-inf`` outside the window with ``outside="mask"``; padding not yet masked)."""
        inputs = self._inputs(x, pad_mask)
        q, k = inputs["q"], inputs["k"]
        B, T, _ = x.shape
        scores = x.new_zeros(1, 1, T, T) if q is None else (q @ k.transpose(-1, -2)) * self.scale
        bias = position_bias(inputs["per_query"], inputs["per_key"], T, inputs["max_rel"],
                             inputs["band"], x.device)
        if bias is not None:
            scores = scores + bias.to(scores.dtype)
        return scores.expand(B, self.n_heads, T, T)

    def _mixing_weights(self, x, pad_mask):
        return safe_softmax(self.logits(x, pad_mask), pad_mask)

    def heads(self, x, pad_mask):
        """The heads before the output projection, (B, H, T, d_head), by ``paths.attend``."""
        return attend(v=self.values(x, pad_mask), **self._inputs(x, pad_mask),
                      dropout=self.dropout, training=self.training, path=self.path)

    def forward(self, x, pad_mask=None):
        x, pad_mask = self.prepare(x, pad_mask)
        return self.project_out(self.heads(x, pad_mask))


@register("absolute", cost="none (fused attention)",
          paper_term="BERT baseline (absolute positions)",
          formula=r"\softmax_j(q_i\cdot k_j/\sqrt{d_h}),\ x_i \leftarrow x_i + p_i",
          absolute_positions=True)
class AbsoluteAttention(Attention):
    """Dot-product attention; the encoder adds learned absolute positions p_i to x_i."""


@register("none", cost="none (fused attention)",
          paper_term="ablation: no position information",
          formula=r"\softmax_j(q_i\cdot k_j/\sqrt{d_h})")
class NoPositionAttention(Attention):
    """Dot-product attention with no position information at all (a bag of tokens)."""


@register("rope", cost="rotate q and k: O(T d)",
          paper_term="not a convolution in this sense (multiplies content)",
          formula=r"\softmax_j\big((R_i q_i)\cdot(R_j k_j)/\sqrt{d_h}\big)")
class RotaryAttention(Attention):
    """Rotary position embeddings (Su et al. 2021): rotate q_i and k_j by angles i*theta."""

    def __init__(self, d_model, n_heads, max_len, *, base: float = 10000.0, dropout: float = 0.0,
                 path: str = "auto"):
        super().__init__(d_model, n_heads, max_len, dropout=dropout, path=path)
        if self.d_head % 2:
            raise ValueError(f"rope needs an even head size, got d_model/n_heads = {self.d_head}")
        self.base = base

    def queries_keys(self, x, pad_mask):
        q, k = super().queries_keys(x, pad_mask)
        cos, sin = rotary_angles(x.shape[1], self.d_head, self.base, device=x.device)
        return rotate(q, cos, sin), rotate(k, cos, sin)


@register("t5", cost="a (H, T, T) bias from a 32-entry table",
          paper_term="fixed lightweight convolution (log-bucketed)",
          formula=r"\softmax_j(q_i\cdot k_j/\sqrt{d_h} + b^{(h)}_{\mathrm{bucket}(j-i)})",
          tables={"t5": "relative_attention_bias.weight"},
          zero_init=("relative_attention_bias.weight",))
class T5BiasAttention(Attention):
    """Content + a learned per-head scalar for the log-bucket of j - i (Raffel et al. 2020).

    As in T5 the bias is never divided by sqrt(d_head).  T5 also leaves the content term
    unscaled (its initialisation makes up for it); ``unscaled_content=True`` reproduces
    that, the default keeps the 1/sqrt(d_head) every other variant uses so that only the
    position term differs between variants.  The bias table is zero at initialisation.
    """

    def __init__(self, d_model, n_heads, max_len, *, num_buckets: int = 32, max_distance: int = 128,
                 unscaled_content: bool = False, content: bool = True, dropout: float = 0.0,
                 path: str = "auto"):
        super().__init__(d_model, n_heads, max_len, content=content, dropout=dropout, path=path)
        if not isinstance(num_buckets, int) or num_buckets < 4 or num_buckets % 2:
            raise ValueError("num_buckets must be an even int >= 4 (half per direction), "
                             f"got {num_buckets!r}")
        # per direction: `exact` buckets of one offset each, then `spread` log-spaced buckets
        # covering the offsets from `exact` up to max_distance: each needs one offset at least
        exact = num_buckets // 4
        spread = num_buckets // 2 - exact
        if not isinstance(max_distance, int) or max_distance < num_buckets // 2:
            raise ValueError(f"max_distance must be an int >= num_buckets // 2 = {num_buckets // 2}"
                             f" (room for {spread} log-spaced buckets per direction after "
                             f"{exact} exact ones), got {max_distance!r}")
        self.num_buckets, self.max_distance = num_buckets, max_distance
        self.relative_attention_bias = nn.Embedding(num_buckets, n_heads)
        nn.init.zeros_(self.relative_attention_bias.weight)
        if unscaled_content:
            self.scale = 1.0

    def per_offset(self, T):
        """(H, 2T-1): the bias of every offset -(T-1) .. T-1, looked up in the bucket table."""
        offsets = torch.arange(-(T - 1), T, device=self.relative_attention_bias.weight.device)
        buckets = t5_bucket(offsets, True, self.num_buckets, self.max_distance)
        return self.relative_attention_bias(buckets).T

    def offset_tables(self, q, k, T):
        # one bias per offset, read at offset j - i (ℓ = T - 1: nothing is clipped), so the
        # backward reduces into 2T-1 slots, not T^2 table lookups
        return self.per_offset(T)[None, :, None, :], None, T - 1, False


@register("alibi", cost="a fixed (H, T, T) bias, no parameters",
          paper_term="fixed lightweight convolution, not learned",
          formula=r"\softmax_j(q_i\cdot k_j/\sqrt{d_h} - m_h\,\lvert j-i\rvert)")
class ALiBiAttention(Attention):
    """Content + a fixed linear penalty -m_h |j - i| with geometric slopes (Press et al. 2022)."""

    def __init__(self, d_model, n_heads, max_len, *, content: bool = True, dropout: float = 0.0,
                 path: str = "auto"):
        super().__init__(d_model, n_heads, max_len, content=content, dropout=dropout, path=path)
        self.register_buffer("slopes", alibi_slopes(n_heads), persistent=False)

    def offset_tables(self, q, k, T):
        distance = torch.arange(-(T - 1), T, device=self.slopes.device).abs()
        per_offset = -(self.slopes[:, None] * distance)                      # (H, 2T-1)
        return per_offset[None, :, None, :], None, T - 1, False
