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
from ..registry import choice, flag, integer, number, register
from .base import DROPOUT, Mixer, split_heads
from .paths import PATHS, Scores, attend, check_path, logits, position_bias, weights

#: ``"auto"`` or one of ``paths.PATHS``: every path computes the same function (``paths.py``)
PATH = choice("auto", "auto", *PATHS)


class Attention(Mixer):
    """Multi-head softmax attention; subclasses add a position term as ``offset_tables``.

    Options: ``content`` (keep the q.k term; without it and without a position term every
    logit is zero: a uniform average), ``dropout`` (on the attention weights, training only),
    ``path`` (``"auto"``, or force one of ``paths.PATHS``: ``"plain"``, ``"sdpa"``, ``"block"``,
    ``"flex"``).
    """

    OPTIONS = {"content": flag(True), "dropout": DROPOUT, "path": PATH}

    def __init__(self, d_model, n_heads, max_len, **options):
        super().__init__(d_model, n_heads, max_len, **options)
        self.content = self.options.get("content", True)
        self.dropout, self.path = self.options["dropout"], self.options["path"]
        check_path(self.path, self.dropout)
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
        """The position term as ``(per_query, per_key, max_rel, band)`` (the fields of
        ``paths.Scores``), or ``None`` without one.  ``q``/``k`` are ``None`` when the variant
        has none."""
        return None

    def describe(self, q, k, T: int, pad_mask=None) -> Scores:
        """The logits of this layer as one ``paths.Scores`` record, from its queries and keys."""
        per_query, per_key, max_rel, band = self.offset_tables(q, k, T) or (None, None, 0, False)
        q, k = (q, k) if self.content else (None, None)
        if q is None and per_query is None and per_key is None:   # no term at all: logits 0
            per_query, max_rel = self.value.weight.new_zeros(1, 1, 1, 1), 0
        return Scores(T, q, k, self.scale, per_query, per_key, max_rel, band, pad_mask)

    def scores(self, x, pad_mask) -> Scores:
        q, k = self.queries_keys(x, pad_mask) if self.needs_queries_keys() else (None, None)
        return self.describe(q, k, x.shape[1], pad_mask)

    def position_scores(self, q, k, T: int):
        """The position term placed into (B|1, H, T, T) logits, or ``None``."""
        if self.offset_tables(q, k, T) is None:
            return None
        return position_bias(self.describe(q, k, T), self.value.weight.device)

    def logits(self, x, pad_mask=None):
        """(B, H, T, T) logits before the softmax: content plus the placed position term
        (``-inf`` beyond the window with ``outside="mask"`` and at padded keys)."""
        x, pad_mask = self.prepare(x, pad_mask)
        B, T, _ = x.shape
        return logits(self.scores(x, pad_mask)).expand(B, self.n_heads, T, T)

    def mixing_weights(self, x, pad_mask):
        B, T, _ = x.shape
        return weights(self.scores(x, pad_mask)).expand(B, self.n_heads, T, T)

    def heads(self, x, pad_mask):
        return attend(self.scores(x, pad_mask), self.values(x, pad_mask), dropout=self.dropout,
                      training=self.training, path=self.path)


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

    OPTIONS = {"base": number(10000.0, "a positive number (θ_t = base^(-2t/d_head))", lambda b: b > 0),
               "dropout": DROPOUT, "path": PATH}             # no content option: rope rotates it

    def __init__(self, d_model, n_heads, max_len, **options):
        super().__init__(d_model, n_heads, max_len, **options)
        if self.d_head % 2:
            raise ValueError(f"rope needs an even head size, got d_model/n_heads = {self.d_head}")
        self.base = self.options["base"]

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

    OPTIONS = {"num_buckets": integer(32, "an even int >= 4 (half per direction)",
                                      lambda n: n >= 4 and n % 2 == 0),
               "max_distance": integer(128, "a positive int", lambda n: n >= 1),
               "unscaled_content": flag(False), **Attention.OPTIONS}

    def __init__(self, d_model, n_heads, max_len, **options):
        super().__init__(d_model, n_heads, max_len, **options)
        num_buckets, max_distance = self.options["num_buckets"], self.options["max_distance"]
        # per direction: `exact` buckets of one offset each, then `spread` log-spaced buckets
        # covering the offsets from `exact` up to max_distance: each needs one offset at least
        exact = num_buckets // 4
        spread = num_buckets // 2 - exact
        if max_distance < num_buckets // 2:
            raise ValueError(f"max_distance must be an int >= num_buckets // 2 = {num_buckets // 2}"
                             f" (room for {spread} log-spaced buckets per direction after "
                             f"{exact} exact ones), got {max_distance!r}")
        self.num_buckets, self.max_distance = num_buckets, max_distance
        self.relative_attention_bias = nn.Embedding(num_buckets, n_heads)
        nn.init.zeros_(self.relative_attention_bias.weight)
        if self.options["unscaled_content"]:
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

    def __init__(self, d_model, n_heads, max_len, **options):
        super().__init__(d_model, n_heads, max_len, **options)
        self.register_buffer("slopes", alibi_slopes(n_heads), persistent=False)

    def offset_tables(self, q, k, T):
        distance = torch.arange(-(T - 1), T, device=self.slopes.device).abs()
        per_offset = -(self.slopes[:, None] * distance)                      # (H, 2T-1)
        return per_offset[None, :, None, :], None, T - 1, False
