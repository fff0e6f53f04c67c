"""Wu et al. (2019)'s lightweight and dynamic convolutions.

    y_i = sum_{r=-k..k} w^(h)_r(i) * v_{i+r}      for the channels of head h
    w^(h)(i) = softmax_r( W^(h) )                  lightconv: one kernel per head
    w^(h)(i) = softmax_r( (x_i W_dyn)_(h, :) )     dynconv:   predicted from x_i alone

The kernel is tied across the d_head channels of a head ("lightweight") and the sequence is
zero-padded, so the taps that fall outside it are lost (edge rows sum to less than 1).  The
forward pass is a true convolution -- 2k+1 shifted multiply-adds, O(T k) memory -- and
``mixing_matrix`` writes the same kernels as a band of the (T, T) matrix.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..positions import place_band
from ..registry import register
from .base import Mixer, split_heads, zero_padding


def convolve_heads(values: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """Per-head convolution with zero padding.

    ``values`` (B, H, T, d); ``kernel`` (B|1, H, T|1, 2k+1), tap ``r + k`` weighting
    offset ``r``.  Returns (B, H, T, d) with out[i] = sum_r kernel[i, r + k] * values[i + r].
    """
    T, width = values.shape[2], kernel.shape[-1]
    k = width // 2
    padded = F.pad(values, (0, 0, k, k))
    out = kernel[..., 0, None] * padded[:, :, 0:T]
    for tap in range(1, width):
        out = out + kernel[..., tap, None] * padded[:, :, tap:tap + T]
    return out


def _half_width(max_rel, kernel_size) -> int:
    if kernel_size is not None:
        if not isinstance(kernel_size, int) or kernel_size < 1 or kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be a positive odd int (centred kernel), got {kernel_size!r}")
        return kernel_size // 2
    if not isinstance(max_rel, int) or max_rel < 0:
        raise ValueError(f"max_rel (taps per direction) must be a non-negative int, got {max_rel!r}")
    return max_rel


class Convolution(Mixer):
    """Shared parts: the value projection (Wu's GLU) and the band-matrix view."""

    def __init__(self, d_model, n_heads, max_len, *, max_rel: int = 8, kernel_size: int | None = None,
                 glu: bool = True, dropout: float = 0.0):
        super().__init__(d_model, n_heads, max_len)
        self.max_rel = _half_width(max_rel, kernel_size)
        self.dropout = dropout
        # Wu et al.'s block feeds the convolution through Linear(d, 2d) + GLU
        self.value = nn.Linear(d_model, 2 * d_model if glu else d_model)
        self.glu = glu

    def kernel(self, x: torch.Tensor) -> torch.Tensor:
        """Softmax-normalised kernels, (B|1, H, T|1, 2k+1)."""
        raise NotImplementedError

    def values(self, x, pad_mask=None):
        v = self.value(x)
        v = F.glu(v, dim=-1) if self.glu else v
        return split_heads(zero_padding(v, pad_mask), self.n_heads)

    def _kernel(self, x):
        return F.dropout(self.kernel(x), self.dropout, self.training)  # DropConnect, as Wu

    def forward(self, x, pad_mask=None):
        pad_mask = self.check_input(x, pad_mask)
        return self.project_out(convolve_heads(self.values(x, pad_mask), self._kernel(x)))

    def mixing_matrix_(self, x, pad_mask):
        B, T, _ = x.shape
        kernel = self.kernel(x)
        band = place_band(kernel.expand(B, self.n_heads, T, kernel.shape[-1]), self.max_rel)
        if pad_mask is not None:   # padded values are zero, so their columns carry no weight
            band = band * pad_mask[:, None, None, :].to(band.dtype)
        return band


@register("lightconv", cost="replaces attention: O(T k d), no (T, T) work",
          paper_term="lightweight convolution (Wu et al. 2019)",
          formula=r"\sum_{|r|\le k}\softmax_r(w^{(h)})_r\, v_{i+r}")
class LightweightConv(Convolution):
    """One learned kernel of 2k+1 taps per head, softmax-normalised, no content term."""

    def __init__(self, d_model, n_heads, max_len, *, max_rel: int = 8, kernel_size: int | None = None,
                 glu: bool = True, dropout: float = 0.0):
        super().__init__(d_model, n_heads, max_len, max_rel=max_rel, kernel_size=kernel_size,
                         glu=glu, dropout=dropout)
        self.weight = nn.Parameter(torch.empty(n_heads, 2 * self.max_rel + 1))
        nn.init.xavier_uniform_(self.weight)

    def kernel(self, x):
        return F.softmax(self.weight, dim=-1)[None, :, None, :]

    def forward(self, x, pad_mask=None):
        # The kernel does not depend on the position, so this is one grouped conv1d: each
        # head's kernel repeated for its d_head channels (contiguous blocks, as fairseq's TBC).
        pad_mask = self.check_input(x, pad_mask)
        B, T, D = x.shape
        v = self.values(x, pad_mask).transpose(1, 2).reshape(B, T, D).transpose(1, 2)   # (B, D, T)
        weight = self._kernel(x)[0, :, 0].repeat_interleave(self.d_head, dim=0)[:, None, :]
        y = F.conv1d(v, weight.to(v.dtype), padding=self.max_rel, groups=D)
        return self.out(y.transpose(1, 2))


@register("dynconv", cost="replaces attention: O(T k d) + kernel generator",
          paper_term="dynamic lightweight convolution (Wu et al. 2019)",
          formula=r"\sum_{|r|\le k}\softmax_r(x_i W^{\mathrm{dyn}})^{(h)}_r\, v_{i+r}")
class DynamicConv(Convolution):
    """Kernel of each position predicted from that position's input alone."""

    def __init__(self, d_model, n_heads, max_len, *, max_rel: int = 8, kernel_size: int | None = None,
                 glu: bool = True, dropout: float = 0.0):
        super().__init__(d_model, n_heads, max_len, max_rel=max_rel, kernel_size=kernel_size,
                         glu=glu, dropout=dropout)
        # fairseq's weight_linear: Linear(d, H * (2k+1)) without bias
        self.kernel_generator = nn.Linear(d_model, n_heads * (2 * self.max_rel + 1), bias=False)

    def kernel(self, x):
        B, T, _ = x.shape
        logits = self.kernel_generator(x).view(B, T, self.n_heads, -1).transpose(1, 2)
        return F.softmax(logits, dim=-1)                               # (B, H, T, 2k+1)
