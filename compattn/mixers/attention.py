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
import torch.nn.functional as F
from torch import nn

from ..positions import alibi_slopes, place_clipped, relative_offsets, rotary_angles, rotate, t5_bucket
from ..registry import register
from .base import Mixer, masked_softmax, split_heads
from .flex import flex_available, flex_relative_attention


class Attention(Mixer):
    """Multi-head softmax attention; subclasses add ``position_scores``.

    Options: ``content`` (keep the q.k term; switching it off leaves a pure position
    kernel), ``dropout`` (on the attention weights, training only).
    """

    #: FlexAttention for position terms that are offset tables (``flex.py``): ``None`` picks it
    #: on CUDA; ``True``/``False`` force it on or off for this instance
    flex: bool | None = None

    def __init__(self, d_model, n_heads, max_len, *, content: bool = True, dropout: float = 0.0):
        super().__init__(d_model, n_heads, max_len)
        self.content, self.dropout = content, dropout
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

    def position_scores(self, q, k, T: int):
        """Additive logits (B|1, H, T, T), or ``None``. ``q``/``k`` are ``None`` without them."""
        return None

    def offset_tables(self, q, k, T: int):
        """``(per_query, per_key, k, band)`` when the position term is tables read at a clipped
        offset (see ``flex.py``), else ``None``."""
        return None

    def use_flex(self, x) -> bool:
        if not self.content or (self.training and self.dropout > 0):
            return False
        return (x.is_cuda and flex_available()) if self.flex is None else self.flex

    def logits(self, x, pad_mask):
        q, k = self.queries_keys(x, pad_mask) if self.needs_queries_keys() else (None, None)
        scores = self.position_scores(q, k, x.shape[1])
        if self.content:
            content = (q @ k.transpose(-1, -2)) * self.scale
            scores = content if scores is None else content + scores
        return scores.to(x.dtype)

    def mixing_matrix_(self, x, pad_mask):
        return masked_softmax(self.logits(x, pad_mask), pad_mask)

    def forward(self, x, pad_mask=None):
        return self.project_out(self.attend(x, self.check_input(x, pad_mask)))

    def attend(self, x, pad_mask):
        """The heads before the output projection, (B, H, T, d_head)."""
        v = self.values(x, pad_mask)
        p = self.dropout if self.training else 0.0
        if not self.content:
            return F.dropout(self.mixing_matrix_(x, pad_mask), p, self.training) @ v
        q, k = self.queries_keys(x, pad_mask)
        tables = self.offset_tables(q, k, x.shape[1]) if self.use_flex(x) else None
        if tables is not None:      # the tables are read inside FlexAttention's fused kernel
            per_query, per_key, max_rel, band = tables
            return flex_relative_attention(q, k, v, per_query, per_key, pad_mask, scale=self.scale,
                                           max_rel=max_rel, band=band)
        # Fused attention: PyTorch's SDPA adds our position term as a float mask.
        bias = self.position_scores(q, k, x.shape[1])
        mask = None if pad_mask is None else pad_mask[:, None, None, :]
        if bias is not None:
            bias = bias.to(q.dtype)
            mask = bias if mask is None else torch.where(mask, bias, float("-inf"))
        return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=p, scale=self.scale)


@register("absolute", cost="none (fused attention)",
          paper_term="BERT baseline (absolute positions)",
          formula=r"\softmax_j(q_i\cdot k_j/\sqrt{d_h}),\ x_i \leftarrow x_i + p_i")
class AbsoluteAttention(Attention):
    """Dot-product attention; the encoder adds learned absolute positions p_i to x_i."""
    uses_absolute_positions = True


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

    def __init__(self, d_model, n_heads, max_len, *, base: float = 10000.0, dropout: float = 0.0):
        super().__init__(d_model, n_heads, max_len, dropout=dropout)
        if self.d_head % 2:
            raise ValueError(f"rope needs an even head size, got d_model/n_heads = {self.d_head}")
        self.base = base

    def queries_keys(self, x, pad_mask):
        q, k = super().queries_keys(x, pad_mask)
        cos, sin = rotary_angles(x.shape[1], self.d_head, self.base, device=x.device)
        return rotate(q, cos, sin), rotate(k, cos, sin)


@register("t5", cost="a (H, T, T) bias from a 32-entry table",
          paper_term="fixed lightweight convolution (log-bucketed)",
          formula=r"\softmax_j(q_i\cdot k_j/\sqrt{d_h} + b^{(h)}_{\mathrm{bucket}(j-i)})")
class T5BiasAttention(Attention):
    """Content + a learned per-head scalar for the log-bucket of j - i (Raffel et al. 2020).

    As in T5 the bias is never divided by sqrt(d_head).  T5 also leaves the content term
    unscaled (its initialisation makes up for it); ``unscaled_content=True`` reproduces
    that, the default keeps the 1/sqrt(d_head) every other variant uses so that only the
    position term differs between variants.  The bias table is zero at initialisation.
    """

    def __init__(self, d_model, n_heads, max_len, *, num_buckets: int = 32, max_distance: int = 128,
                 bidirectional: bool = True, unscaled_content: bool = False, content: bool = True,
                 dropout: float = 0.0):
        super().__init__(d_model, n_heads, max_len, content=content, dropout=dropout)
        if num_buckets < 2 or (bidirectional and num_buckets < 4):
            raise ValueError(f"num_buckets must be >= 4 (bidirectional) or >= 2, got {num_buckets}")
        self.num_buckets, self.max_distance, self.bidirectional = num_buckets, max_distance, bidirectional
        self.relative_attention_bias = nn.Embedding(num_buckets, n_heads)
        nn.init.zeros_(self.relative_attention_bias.weight)
        if unscaled_content:
            self.scale = 1.0

    def per_offset(self, T):
        """(H, 2T-1): the bias of every offset -(T-1) .. T-1, looked up in the bucket table."""
        offsets = torch.arange(-(T - 1), T, device=self.relative_attention_bias.weight.device)
        buckets = t5_bucket(offsets, self.bidirectional, self.num_buckets, self.max_distance)
        return self.relative_attention_bias(buckets).T

    def position_scores(self, q, k, T):
        # one bias per offset first, then placed into (T, T) by a gather, so the backward
        # reduces into 2T-1 slots, not T^2 table lookups
        per_offset = self.per_offset(T)[:, None, :]                                  # (H, 1, 2T-1)
        return place_clipped(per_offset.expand(self.n_heads, T, 2 * T - 1), T - 1)[None]

    def offset_tables(self, q, k, T):
        return self.per_offset(T)[None, :, None, :], None, T - 1, False           # no clip within T


@register("alibi", cost="a fixed (H, T, T) bias, no parameters",
          paper_term="fixed lightweight convolution, not learned",
          formula=r"\softmax_j(q_i\cdot k_j/\sqrt{d_h} - m_h\,\lvert j-i\rvert)")
class ALiBiAttention(Attention):
    """Content + a fixed linear penalty -m_h |j - i| with geometric slopes (Press et al. 2022)."""

    def __init__(self, d_model, n_heads, max_len, *, content: bool = True, dropout: float = 0.0):
        super().__init__(d_model, n_heads, max_len, content=content, dropout=dropout)
        self.register_buffer("slopes", alibi_slopes(n_heads), persistent=False)

    def position_scores(self, q, k, T):
        distance = relative_offsets(T, self.slopes.device).abs()
        return -(self.slopes[:, None, None] * distance)[None]  # (1, H, T, T)
