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

from ..positions import place_band
from ..registry import register
from .base import Mixer, check_dropout, split_heads, zero_padding
from .convolution import convolve_heads
from .paths import PATHS, attend, safe_softmax, zero_padded_rows


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
    def __init__(self, d_model, n_heads, max_len, *, kernel_size: int = 9, head_ratio: int = 2,
                 dropout: float = 0.0, path: str = "auto"):
        super().__init__(d_model, n_heads, max_len)
        if not isinstance(kernel_size, int) or kernel_size < 1 or kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be a positive odd int (centred kernel), got {kernel_size!r}")
        if not isinstance(head_ratio, int) or head_ratio < 1 or n_heads % head_ratio:
            raise ValueError(f"head_ratio must be a positive int dividing n_heads ({n_heads}), "
                             f"got {head_ratio!r}")
        if path != "auto" and path not in PATHS:
            raise ValueError(f"path must be 'auto' or one of {PATHS}, got {path!r}")
        self.kernel_size, self.dropout, self.path = kernel_size, check_dropout(dropout), path
        self.max_rel = kernel_size // 2                        # taps per direction
        self.attention_heads = n_heads // head_ratio           # H' attention + H' conv heads
        width = self.attention_heads * self.d_head             # A = D / head_ratio
        self.query = nn.Linear(d_model, width)
        self.key = nn.Linear(d_model, width)
        self.value = nn.Linear(d_model, width)
        self.span_key = SeparableConv1d(d_model, width, kernel_size)
        self.kernel_generator = nn.Linear(width, self.attention_heads * kernel_size)
        self.conv_value = nn.Linear(d_model, width)
        if 2 * width != d_model:                               # [attention ; convolution] -> D
            self.out = nn.Linear(2 * width, d_model)

    def _qk(self, x, pad_mask):
        return split_heads(self.query(x), self.attention_heads), split_heads(self.key(x), self.attention_heads)

    def kernel(self, x, pad_mask):
        """Conv-head kernels (B, H', T, K), softmax over the K taps."""
        B, T, _ = x.shape
        span_keys = self.span_key(zero_padding(x, pad_mask))
        logits = self.kernel_generator(self.query(x) * span_keys)
        return F.softmax(logits.view(B, T, self.attention_heads, self.kernel_size).transpose(1, 2), dim=-1)

    def values(self, x, pad_mask=None):
        v = split_heads(self.value(x), self.attention_heads)
        v_conv = split_heads(zero_padding(self.conv_value(x), pad_mask), self.attention_heads)
        return torch.cat([v, v_conv], dim=1)                   # (B, 2H', T, d_head)

    def forward(self, x, pad_mask=None):
        x, pad_mask = self.prepare(x, pad_mask)
        q, k = self._qk(x, pad_mask)
        values = self.values(x, pad_mask)
        v, v_conv = values.split(self.attention_heads, dim=1)
        attended = attend(q, k, v, pad_mask=pad_mask, scale=self.d_head ** -0.5,
                          dropout=self.dropout, training=self.training, path=self.path)
        convolved = zero_padded_rows(convolve_heads(v_conv, self.kernel(x, pad_mask)), pad_mask)
        return self.project_out(torch.cat([attended, convolved], dim=1))

    def _mixing_weights(self, x, pad_mask):
        q, k = self._qk(x, pad_mask)
        attention = safe_softmax((q @ k.transpose(-1, -2)) * self.d_head ** -0.5, pad_mask)
        band = place_band(self.kernel(x, pad_mask), self.kernel_size // 2)
        if pad_mask is not None:
            keep = pad_mask[:, None, :, None] & pad_mask[:, None, None, :]
            band = band.masked_fill(~keep, 0.0)
        return torch.cat([attention, band], dim=1)
