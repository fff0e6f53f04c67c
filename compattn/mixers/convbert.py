"""ConvBERT's mixed attention (Jiang et al. 2020).

Of the ``n_heads`` heads' width, ``H' = n_heads / head_ratio`` heads are ordinary
self-attention on a narrower projection and ``H'`` more are a *span-based dynamic
convolution* (``head_ratio=2``, the paper's choice, keeps the width: half and half):

    K_s = SepConv_K(X)                                   span-aware keys (depthwise + pointwise)
    w_i = softmax_taps( (Q_i * K_s,i) W_f + b_f )        a kernel of K taps per conv head,
                                                         generated at the query position i
    y_i = sum_r w_i[r] * V'_{i+r}                        a dynamic lightweight convolution

The conv heads have their own value projection V' and are zero-padded at the edges, as
in the authors' and Hugging Face's code.  Output channels are ``[attention heads, conv heads]``,
2 H' d_head of them, projected back to d_model.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..registry import integer, register
from .attention import PATH
from .base import DROPOUT, Mixer, split_heads, zero_padded_rows, zero_padding
from .convolution import band_matrix, convolve_heads, kernel_size
from .paths import Scores, attend, check_path, weights


class SeparableConv1d(nn.Module):
    """Depthwise conv over time (no bias), pointwise Linear (no bias), one output bias."""

    def __init__(self, d_in: int, d_out: int, kernel_size: int):
        super().__init__()
        self.depthwise = nn.Conv1d(d_in, d_in, kernel_size, padding=kernel_size // 2,
                                   groups=d_in, bias=False)
        self.pointwise = nn.Conv1d(d_in, d_out, 1, bias=False)
        self.bias = nn.Parameter(torch.zeros(d_out, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:      # (B, T, d_in) -> (B, T, d_out)
        return (self.pointwise(self.depthwise(x.transpose(1, 2))) + self.bias).transpose(1, 2)


@register("convbert", cost="half the heads become an O(T K d) convolution",
          paper_term="ConvBERT mixed attention (span-based dynamic conv)",
          formula=r"[\softmax_j(q_i\cdot k_j/\sqrt{d_h})\ ;\ \sum_r \softmax_r"
                  r"((q_i\odot k^s_i)W_f)_r\, v'_{i+r}]",
          rows_sum_to_one=False)
class ConvBertAttention(Mixer):
    OPTIONS = {"kernel_size": kernel_size(9),
               "head_ratio": integer(2, "a positive int dividing n_heads", lambda n: n >= 1),
               "dropout": DROPOUT, "path": PATH}

    def __init__(self, d_model, n_heads, max_len, **options):
        super().__init__(d_model, n_heads, max_len, **options)
        self.kernel_size, head_ratio = self.options["kernel_size"], self.options["head_ratio"]
        if n_heads % head_ratio:
            raise ValueError(f"head_ratio must be a positive int dividing n_heads ({n_heads}), "
                             f"got {head_ratio!r}")
        self.dropout, self.path = self.options["dropout"], self.options["path"]
        check_path(self.path, self.dropout)
        self.max_rel = self.kernel_size // 2                   # taps per direction
        self.attention_heads = n_heads // head_ratio           # H' attention + H' conv heads
        width = self.attention_heads * self.d_head             # A = D / head_ratio
        self.query = nn.Linear(d_model, width)
        self.key = nn.Linear(d_model, width)
        self.value = nn.Linear(d_model, width)
        self.span_key = SeparableConv1d(d_model, width, self.kernel_size)
        self.kernel_generator = nn.Linear(width, self.attention_heads * self.kernel_size)
        self.conv_value = nn.Linear(d_model, width)
        if 2 * width != d_model:                               # [attention ; convolution] -> D
            self.out = nn.Linear(2 * width, d_model)

    def scores(self, queries, x, pad_mask) -> Scores:
        """The attention heads' logits, from the projected ``queries`` (B, T, A)."""
        return Scores(x.shape[1], split_heads(queries, self.attention_heads),
                      split_heads(self.key(x), self.attention_heads), self.d_head ** -0.5,
                      pad_mask=pad_mask)

    def kernel(self, queries, x):
        """Conv-head kernels (B, H', T, K), softmax over the K taps, generated at each query
        from its projection ``queries`` (B, T, A) times the span-aware key of ``x`` (whose
        padded rows are zero: ``Mixer.prepare``)."""
        B, T, _ = x.shape
        logits = self.kernel_generator(queries * self.span_key(x))
        return F.softmax(logits.view(B, T, self.attention_heads, self.kernel_size).transpose(1, 2), dim=-1)

    def values(self, x, pad_mask=None):
        v = split_heads(self.value(x), self.attention_heads)
        v_conv = split_heads(zero_padding(self.conv_value(x), pad_mask), self.attention_heads)
        return torch.cat([v, v_conv], dim=1)                   # (B, 2H', T, d_head)

    def heads(self, x, pad_mask):
        queries = self.query(x)                                # once: attention and kernels
        v, v_conv = self.values(x, pad_mask).split(self.attention_heads, dim=1)
        attended = attend(self.scores(queries, x, pad_mask), v, dropout=self.dropout,
                          training=self.training, path=self.path)
        convolved = convolve_heads(v_conv, self.kernel(queries, x))
        return torch.cat([attended, zero_padded_rows(convolved, pad_mask)], dim=1)

    def mixing_weights(self, x, pad_mask):
        queries = self.query(x)
        return torch.cat([weights(self.scores(queries, x, pad_mask)),
                          band_matrix(self.kernel(queries, x), pad_mask)], dim=1)
