"""Composite attention (Chang et al. 2021) and Shaw et al.'s relative key embeddings.

    logits_ij = q_i . k_j / sqrt(d)          content      (the ``qk`` term)
              + beta^(h)_clip(j-i)           fixed        (a lightweight convolution)
              + q_i . u_clip(j-i) / sqrt(d)  query-based  (a dynamic lightweight convolution)
              + k_j . u'_clip(i-j) / sqrt(d) key-based    (a dynamic lightweight convolution)

Each relative term depends on one token at most, so it is computed on the 2ℓ+1 offsets
first -- a (T, 2ℓ+1) table from one small matmul -- and then placed into (T, T).  The
key-based term is indexed by i - j (the authors' gather-then-transpose); the fixed term
starts at zero, so composite attention equals plain attention at initialisation.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from ..registry import choice, flag, integer, register
from .attention import PATH, Attention
from .base import DROPOUT
from .paths import attend

#: ℓ: offsets per direction; 8 as in the authors' runs (a ±8 window)
MAX_REL = integer(8, "a positive int (ℓ, offsets per direction)", lambda n: n >= 1)


def _relative_table(d_head: int, width: int) -> nn.Parameter:
    # kaiming_uniform(a=sqrt(5)) on a (d_head, 2ℓ+1) tensor, as the authors' code does
    table = torch.empty(d_head, width)
    nn.init.kaiming_uniform_(table, a=math.sqrt(5))
    return nn.Parameter(table)


class RelativeAttention(Attention):
    """Shared plumbing: the clip window ``max_rel`` (ℓ) and how terms are placed.

    ``outside="clip"`` (the authors' choice) lets offsets beyond ±ℓ reuse the edge entry;
    ``outside="mask"`` gives them -inf, i.e. attention restricted to a ±ℓ window like a
    convolution that is zero outside its taps.
    """

    OPTIONS = {"max_rel": MAX_REL, "outside": choice("clip", "clip", "mask"), **Attention.OPTIONS}

    def __init__(self, d_model, n_heads, max_len, **options):
        super().__init__(d_model, n_heads, max_len, **options)
        self.max_rel = self.options["max_rel"]
        self.outside = self.options.get("outside", "clip")

    def position_tables(self, q, k):
        """The (T, 2ℓ+1) tables before placement: ``(per_query, per_key)``, either may be ``None``."""
        raise NotImplementedError

    def offset_tables(self, q, k, T):
        # the window applies with outside="mask" whichever tables are on (even none)
        return (*self.position_tables(q, k), self.max_rel, self.outside == "mask")


@register("composite", cost="two (T, 2ℓ+1) matmuls + gathers",
          paper_term="composite attention (qk_convfixed_convq_convk)",
          formula=r"\softmax_j\big(\tfrac{q_i\cdot k_j + q_i\cdot u_{\clip(j-i)}"
                  r" + k_j\cdot u'_{\clip(i-j)}}{\sqrt{d_h}} + \beta^{(h)}_{\clip(j-i)}\big)",
          tables={"fixed": "fixed_kernel", "query": "query_kernel", "key": "key_kernel"},
          generated={"query": "query_kernel", "key": "key_kernel"}, zero_init=("fixed_kernel",))
@register("composite_key", cost="one (T, d_h) x (d_h, 2ℓ+1) matmul + gather",
          paper_term="composite attention, key-based dynamic (qk_convk)",
          formula=r"\softmax_j\big((q_i\cdot k_j + k_j\cdot u'_{\clip(i-j)})/\sqrt{d_h}\big)",
          tables={"key": "key_kernel"}, generated={"key": "key_kernel"},
          fixed=False, query=False, key=True)
@register("composite_query", cost="one (T, d_h) x (d_h, 2ℓ+1) matmul + gather",
          paper_term="composite attention, query-based dynamic (qk_convq)",
          formula=r"\softmax_j\big((q_i\cdot k_j + q_i\cdot u_{\clip(j-i)})/\sqrt{d_h}\big)",
          tables={"query": "query_kernel"}, generated={"query": "query_kernel"},
          fixed=False, query=True, key=False)
@register("composite_fixed", cost="a (H, 2ℓ+1) table placed into (T, T)",
          paper_term="composite attention, fixed (qk_convfixed)",
          formula=r"\softmax_j(q_i\cdot k_j/\sqrt{d_h} + \beta^{(h)}_{\clip(j-i)})",
          tables={"fixed": "fixed_kernel"}, zero_init=("fixed_kernel",),
          fixed=True, query=False, key=False)
class CompositeAttention(RelativeAttention):
    """content + fixed + query-based + key-based terms, each switchable."""

    OPTIONS = {**RelativeAttention.OPTIONS, "fixed": flag(True), "query": flag(True), "key": flag(True)}

    def __init__(self, d_model, n_heads, max_len, **options):
        super().__init__(d_model, n_heads, max_len, **options)
        self.terms = {term: self.options[term] for term in ("fixed", "query", "key")}
        if not (self.content or any(self.terms.values())):
            raise ValueError("composite attention needs at least one of content, fixed, query, key")
        width = 2 * self.max_rel + 1
        if self.terms["fixed"]:   # beta^(h)_r: one kernel per head, zero at initialisation
            self.fixed_kernel = nn.Parameter(torch.zeros(n_heads, width))
        if self.terms["query"]:   # u_r: (d_head, 2ℓ+1), shared by the heads
            self.query_kernel = _relative_table(self.d_head, width)
        if self.terms["key"]:     # u'_r
            self.key_kernel = _relative_table(self.d_head, width)

    def needs_queries_keys(self):    # called while Attention is built, so from the options
        return self.content or self.options["query"] or self.options["key"]

    def position_tables(self, q, k):
        # Terms generated at the query position share one table: row i, column clip(j-i).
        per_query = per_key = None
        if self.terms["fixed"]:
            per_query = self.fixed_kernel[None, :, None, :]             # (1, H, 1, 2ℓ+1)
        if self.terms["query"]:
            generated = (q @ self.query_kernel) * self.scale            # (B, H, T, 2ℓ+1)
            per_query = generated if per_query is None else per_query + generated
        if self.terms["key"]:
            per_key = (k @ self.key_kernel) * self.scale                # row j, column clip(i-j)
        return per_query, per_key


@register("shaw", cost="one (T, d_h) x (d_h, 2ℓ+1) matmul + gather",
          paper_term="query-based dynamic lightweight convolution (Shaw et al. 2018)",
          formula=r"\softmax_j\big(q_i\cdot(k_j + a^K_{\clip(j-i)})/\sqrt{d_h}\big)",
          tables={"shaw": "relative_keys"}, zero_init=("relative_values",))
class ShawAttention(RelativeAttention):
    """Relative key embeddings a^K_r (2ℓ+1 vectors of size d_head, shared by the heads).

    Shaw et al. also add relative *value* embeddings a^V_clip(j-i) to the values; neither
    Chang et al.'s code nor Hugging Face's ``relative_key`` does, so ``relative_values``
    is off by default.  With it on, the output gains sum_j alpha_ij a^V_clip(j-i), which
    is computed from the (T, 2ℓ+1) offset totals of alpha, not from a (T, T, d) tensor.
    Shaw's term always comes with the content term, and is clipped (no ``content`` or
    ``outside`` option).
    """

    OPTIONS = {"max_rel": MAX_REL, "relative_values": flag(False), "dropout": DROPOUT, "path": PATH}

    def __init__(self, d_model, n_heads, max_len, **options):
        super().__init__(d_model, n_heads, max_len, **options)
        if self.options["relative_values"] and self.path not in ("auto", "plain"):
            raise ValueError("shaw with relative_values=True needs the attention weights "
                             f"themselves: path must be 'auto' or 'plain', got {self.path!r}")
        width = 2 * self.max_rel + 1
        self.relative_keys = nn.Parameter(torch.randn(width, self.d_head) * self.d_head ** -0.5)
        self.relative_values = (nn.Parameter(torch.zeros(width, self.d_head))
                                if self.options["relative_values"] else None)

    def position_tables(self, q, k):
        return (q @ self.relative_keys.T) * self.scale, None      # (B, H, T, 2ℓ+1) per query

    def heads(self, x, pad_mask):
        return attend(self.scores(x, pad_mask), self.values(x, pad_mask), dropout=self.dropout,
                      training=self.training, path=self.path, relative_values=self.relative_values)
