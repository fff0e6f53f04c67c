"""Composite attention (Chang et al. 2021) and Shaw et al.'s relative key embeddings.

    logits_ij = q_i . k_j / sqrt(d)          content      (the ``qk`` term)
              + beta^(h)_clip(j-i)           fixed        (a lightweight convolution)
              + q_i . u_clip(j-i) / sqrt(d)  query-based  (a dynamic lightweight convolution)
              + k_j . u'_clip(i-j) / sqrt(d) key-based    (a dynamic lightweight convolution)

Each relative term depends on one token at most, so it is computed on the 2k+1 offsets
first -- a (T, 2k+1) table from one small matmul -- and then placed into (T, T).  The
key-based term is indexed by i - j (the authors' gather-then-transpose); the fixed term
starts at zero, so composite attention equals plain attention at initialisation.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ..positions import clipped_index, place_band, place_clipped
from ..registry import register
from .attention import Attention
from .chunked import chunked_relative_attention

#: from this length on, training uses the block-by-block path that keeps no (T, T) matrix
CHUNKED_FROM = 1024


def _relative_table(d_head: int, width: int) -> nn.Parameter:
    # kaiming_uniform(a=sqrt(5)) on a (d_head, 2k+1) tensor, as the authors' code does
    table = torch.empty(d_head, width)
    nn.init.kaiming_uniform_(table, a=math.sqrt(5))
    return nn.Parameter(table)


class RelativeAttention(Attention):
    """Shared plumbing: the clip window ``max_rel`` (k) and how terms are placed.

    ``outside="clip"`` (the authors' choice) lets offsets beyond ±k reuse the edge entry;
    ``outside="mask"`` gives them -inf, i.e. attention restricted to a ±k window like a
    convolution that is zero outside its taps.
    """

    def __init__(self, d_model, n_heads, max_len, *, max_rel: int = 8, outside: str = "clip",
                 content: bool = True, dropout: float = 0.0, chunked: bool | None = None):
        if not isinstance(max_rel, int) or max_rel < 1:
            raise ValueError(f"max_rel (k, offsets per direction) must be a positive int, got {max_rel!r}")
        if outside not in ("clip", "mask"):
            raise ValueError(f"outside must be 'clip' or 'mask', got {outside!r}")
        if chunked not in (None, True, False):
            raise ValueError(f"chunked must be None (automatic), True or False, got {chunked!r}")
        self.max_rel, self.outside, self.chunked = max_rel, outside, chunked
        super().__init__(d_model, n_heads, max_len, content=content, dropout=dropout)

    def place(self, table: torch.Tensor) -> torch.Tensor:
        if self.outside == "clip":
            return place_clipped(table, self.max_rel)
        return place_band(table, self.max_rel, outside=float("-inf"))

    def position_tables(self, q, k):
        """The (T, 2k+1) tables before placement: ``(per_query, per_key)``, either may be ``None``."""
        raise NotImplementedError

    def offset_tables(self, q, k, T):
        return (*self.position_tables(q, k), self.max_rel, self.outside == "mask")

    def position_scores(self, q, k, T):
        per_query, per_key = self.position_tables(q, k)
        scores = None
        if per_query is not None:
            scores = self.place(per_query.expand(*per_query.shape[:2], T, per_query.shape[-1]))
        if per_key is not None:
            # generated at key j, read at offset i - j: place as rows of keys, then transpose
            by_key = self.place(per_key).transpose(-1, -2)
            scores = by_key if scores is None else scores + by_key
        return scores

    def use_chunked(self, T: int) -> bool:
        """The block-by-block path (``chunked.py``): long sequences, content on, no attention dropout.

        Under ``torch.compile`` the plain path is traced instead (the compiler fuses it).
        """
        if not self.content or (self.training and self.dropout > 0) or torch.compiler.is_compiling():
            return False
        return T >= CHUNKED_FROM if self.chunked is None else self.chunked

    def attend(self, x, pad_mask):
        # the block softmax runs in the input's precision: keep bf16/fp16 (and autocast) on the plain path
        low_precision = x.dtype not in (torch.float32, torch.float64) or torch.is_autocast_enabled(x.device.type)
        if self.use_flex(x) or low_precision or not self.use_chunked(x.shape[1]):
            return super().attend(x, pad_mask)
        q, k = self.queries_keys(x, pad_mask)
        per_query, per_key = self.position_tables(q, k)
        return chunked_relative_attention(q, k, self.values(x, pad_mask), per_query, per_key, pad_mask,
                                          scale=self.scale, max_rel=self.max_rel, band=self.outside == "mask")


@register("composite", cost="two (T, 2k+1) matmuls + gathers",
          paper_term="composite attention (qk_convfixed_convq_convk)",
          formula=r"\softmax_j\big(q_i\cdot k_j/\sqrt{d_h} + \beta^{(h)}_{\clip(j-i)}"
                  r" + (q_i\cdot u_{\clip(j-i)} + k_j\cdot u'_{\clip(i-j)})/\sqrt{d_h}\big)",
          fixed=True, query=True, key=True)
@register("composite_key", cost="one (T, d_h) x (d_h, 2k+1) matmul + gather",
          paper_term="composite attention, key-based dynamic (qk_convk)",
          formula=r"\softmax_j\big((q_i\cdot k_j + k_j\cdot u'_{\clip(i-j)})/\sqrt{d_h}\big)",
          fixed=False, query=False, key=True)
@register("composite_query", cost="one (T, d_h) x (d_h, 2k+1) matmul + gather",
          paper_term="composite attention, query-based dynamic (qk_convq)",
          formula=r"\softmax_j\big((q_i\cdot k_j + q_i\cdot u_{\clip(j-i)})/\sqrt{d_h}\big)",
          fixed=False, query=True, key=False)
@register("composite_fixed", cost="a (H, 2k+1) table placed into (T, T)",
          paper_term="composite attention, fixed (qk_convfixed)",
          formula=r"\softmax_j(q_i\cdot k_j/\sqrt{d_h} + \beta^{(h)}_{\clip(j-i)})",
          fixed=True, query=False, key=False)
class CompositeAttention(RelativeAttention):
    """content + fixed + query-based + key-based terms, each switchable."""

    def __init__(self, d_model, n_heads, max_len, *, max_rel: int = 8, outside: str = "clip",
                 content: bool = True, fixed: bool = True, query: bool = True, key: bool = True,
                 dropout: float = 0.0, chunked: bool | None = None):
        self.terms = {"fixed": fixed, "query": query, "key": key}
        if not (content or fixed or query or key):
            raise ValueError("composite attention needs at least one of content, fixed, query, key")
        super().__init__(d_model, n_heads, max_len, max_rel=max_rel, outside=outside,
                         content=content, dropout=dropout, chunked=chunked)
        width = 2 * max_rel + 1
        if fixed:   # beta^(h)_r: one kernel per head, zero at initialisation
            self.fixed_kernel = nn.Parameter(torch.zeros(n_heads, width))
        if query:   # u_r: (d_head, 2k+1), shared by the heads
            self.query_kernel = _relative_table(self.d_head, width)
        if key:     # u'_r
            self.key_kernel = _relative_table(self.d_head, width)

    def needs_queries_keys(self):
        return self.content or self.terms["query"] or self.terms["key"]

    def position_tables(self, q, k):
        # Terms generated at the query position share one table: row i, column clip(j-i).
        per_query = per_key = None
        if self.terms["fixed"]:
            per_query = self.fixed_kernel[None, :, None, :]             # (1, H, 1, 2k+1)
        if self.terms["query"]:
            generated = (q @ self.query_kernel) * self.scale            # (B, H, T, 2k+1)
            per_query = generated if per_query is None else per_query + generated
        if self.terms["key"]:
            per_key = (k @ self.key_kernel) * self.scale                # row j, column clip(i-j)
        return per_query, per_key


@register("shaw", cost="one (T, d_h) x (d_h, 2k+1) matmul + gather",
          paper_term="query-based dynamic lightweight convolution (Shaw et al. 2018)",
          formula=r"\softmax_j\big(q_i\cdot(k_j + a^K_{\clip(j-i)})/\sqrt{d_h}\big)")
class ShawAttention(RelativeAttention):
    """Relative key embeddings a^K_r (2k+1 vectors of size d_head, shared by the heads).

    Shaw et al. also add relative *value* embeddings a^V_clip(j-i) to the values; neither
    Chang et al.'s code nor Hugging Face's ``relative_key`` does, so ``relative_values``
    is off by default.  With it on, the output gains sum_j alpha_ij a^V_clip(j-i), which
    is computed from the (T, 2k+1) offset totals of alpha, not from a (T, T, d) tensor.
    """

    def __init__(self, d_model, n_heads, max_len, *, max_rel: int = 8, relative_values: bool = False,
                 dropout: float = 0.0, chunked: bool | None = None):
        super().__init__(d_model, n_heads, max_len, max_rel=max_rel, dropout=dropout, chunked=chunked)
        width = 2 * max_rel + 1
        self.relative_keys = nn.Parameter(torch.randn(width, self.d_head) * self.d_head ** -0.5)
        self.relative_values = (nn.Parameter(torch.zeros(width, self.d_head))
                                if relative_values else None)

    def position_tables(self, q, k):
        return (q @ self.relative_keys.T) * self.scale, None      # (B, H, T, 2k+1) per query

    def attend(self, x, pad_mask):
        if self.relative_values is None:
            return super().attend(x, pad_mask)
        weights = F.dropout(self.mixing_matrix_(x, pad_mask), self.dropout if self.training else 0.0,
                            self.training)
        # total weight each query puts on each clipped offset: (B, H, T, 2k+1)
        index = clipped_index(x.shape[1], self.max_rel, x.device).expand_as(weights)
        per_offset = weights.new_zeros(*weights.shape[:-1], 2 * self.max_rel + 1)
        per_offset = per_offset.scatter_add(-1, index, weights)
        return weights @ self.values(x, pad_mask) + per_offset @ self.relative_values
