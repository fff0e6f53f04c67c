"""Wu et al. (2019)'s lightweight and dynamic convolutions.

    y_i = sum_{r=-ℓ..ℓ} w^(h)_r(i) * v_{i+r}      for the channels of head h
    w^(h)(i) = softmax_r( W^(h) )                  lightconv: one kernel per head
    w^(h)(i) = softmax_r( (u_i W_dyn)_(h, :) )     dynconv:   predicted from u_i alone
    u_i = GLU(x_i W_in + b_in)                     the convolution's input (Wu's GLU)

The kernel is tied across the d_head channels of a head ("lightweight") and the sequence is
zero-padded, so the taps that fall outside it are lost (edge rows sum to less than 1).  The
forward pass is a true convolution -- 2ℓ+1 shifted multiply-adds, O(T ℓ) memory -- and
``mixing_matrix`` writes the same kernels as a band of the (T, T) matrix.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..positions import place_band
from ..registry import flag, integer, register
from .base import DROPOUT, Mixer, split_heads, zero_padded_rows, zero_padding


def convolve_heads(values: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """Per-head convolution with zero padding.

    ``values`` (B, H, T, d); ``kernel`` (B|1, H, T|1, 2ℓ+1), tap ``r + ℓ`` weighting
    offset ``r``.  Returns (B, H, T, d) with out[i] = sum_r kernel[i, r + ℓ] * values[i + r].
    """
    T, width = values.shape[2], kernel.shape[-1]
    max_rel = width // 2
    padded = F.pad(values, (0, 0, max_rel, max_rel))
    out = kernel[..., 0, None] * padded[:, :, 0:T]
    for tap in range(1, width):
        out = out + kernel[..., tap, None] * padded[:, :, tap:tap + T]
    return out


def band_matrix(kernel: torch.Tensor, pad_mask: torch.Tensor | None) -> torch.Tensor:
    """The (B, H, T, T) mixing matrix of a zero-padded convolution with ``kernel``
    (B|1, H, T, 2ℓ+1): row i holds kernel[i] around the diagonal; padded values are zero, so
    their columns carry no weight, and padded rows are zero."""
    band = place_band(kernel, kernel.shape[-1] // 2)
    if pad_mask is None:
        return band
    return band.masked_fill(~(pad_mask[:, None, :, None] & pad_mask[:, None, None, :]), 0.0)


def kernel_size(default, *, optional: bool = False):
    """The option ``kernel_size`` = 2ℓ + 1: the taps of a centred kernel."""
    return integer(default, "a positive odd int (centred kernel)", lambda n: n >= 1 and n % 2 == 1,
                   optional=optional)


def _half_width(max_rel, kernel_size) -> int:
    """Taps per direction from ``kernel_size`` (2ℓ+1) or ``max_rel`` (ℓ); 8 when neither."""
    if kernel_size is None:
        return 8 if max_rel is None else max_rel
    if max_rel is not None and max_rel != kernel_size // 2:
        raise ValueError(f"kernel_size={kernel_size} means max_rel={kernel_size // 2} taps per "
                         f"direction, but max_rel={max_rel} was given; give one of them")
    return kernel_size // 2


class Convolution(Mixer):
    """Shared parts: the value projection (Wu's GLU), the convolution and the band-matrix view.

    Options: the width as ``max_rel`` (ℓ, taps per direction) or ``kernel_size`` (2ℓ+1), 8 and
    17 when neither is given; ``glu``; ``dropout`` (DropConnect on the kernel, as Wu et al.).
    """

    OPTIONS = {"max_rel": integer(None, "a non-negative int (ℓ, taps per direction)",
                                  lambda n: n >= 0, optional=True),
               "kernel_size": kernel_size(None, optional=True), "glu": flag(True), "dropout": DROPOUT}

    def __init__(self, d_model, n_heads, max_len, **options):
        super().__init__(d_model, n_heads, max_len, **options)
        self.max_rel = _half_width(self.options["max_rel"], self.options["kernel_size"])
        self.dropout, self.glu = self.options["dropout"], self.options["glu"]
        # Wu et al.'s block feeds the convolution through Linear(d, 2d) + GLU
        self.value = nn.Linear(d_model, 2 * d_model if self.glu else d_model)

    def conv_input(self, x, pad_mask=None):
        """(B, T, D): what is convolved, GLU(x W + b), zero at padded positions."""
        v = self.value(x)
        return zero_padding(F.glu(v, dim=-1) if self.glu else v, pad_mask)

    def kernel_from(self, u: torch.Tensor) -> torch.Tensor:
        """Softmax-normalised kernels, (B|1, H, T|1, 2ℓ+1), from the convolution input ``u``."""
        raise NotImplementedError

    def kernel(self, x: torch.Tensor, pad_mask=None) -> torch.Tensor:
        return self.kernel_from(self.conv_input(x, pad_mask))

    def values(self, x, pad_mask=None):
        return split_heads(self.conv_input(x, pad_mask), self.n_heads)

    def heads(self, x, pad_mask):
        u = self.conv_input(x, pad_mask)                               # computed once
        kernel = F.dropout(self.kernel_from(u), self.dropout, self.training)   # DropConnect, as Wu
        return zero_padded_rows(convolve_heads(split_heads(u, self.n_heads), kernel), pad_mask)

    def mixing_weights(self, x, pad_mask):
        B, T, _ = x.shape
        kernel = self.kernel(x, pad_mask)
        return band_matrix(kernel.expand(B, self.n_heads, T, kernel.shape[-1]), pad_mask)


@register("lightconv", cost="replaces attention: O(T ℓ d), no (T, T) work",
          paper_term="lightweight convolution (Wu et al. 2019)",
          formula=r"\sum_{\lvert r\rvert\le \ell}\softmax_r(w^{(h)})_r\, v_{i+r}",
          tables={"lightconv": "weight"}, rows_sum_to_one=False)
class LightweightConv(Convolution):
    """One learned kernel of 2ℓ+1 taps per head, softmax-normalised, no content term."""

    def __init__(self, d_model, n_heads, max_len, **options):
        super().__init__(d_model, n_heads, max_len, **options)
        self.weight = nn.Parameter(torch.empty(n_heads, 2 * self.max_rel + 1))
        nn.init.xavier_uniform_(self.weight)

    def kernel_from(self, u=None):
        return F.softmax(self.weight, dim=-1)[None, :, None, :]

    def heads(self, x, pad_mask):
        # The kernel does not depend on the position, so this is one grouped conv1d: each
        # head's kernel repeated for its d_head channels (contiguous blocks, as fairseq's TBC).
        v = self.conv_input(x, pad_mask).transpose(1, 2)                          # (B, D, T)
        kernel = F.dropout(self.kernel_from(), self.dropout, self.training)
        weight = kernel[0, :, 0].repeat_interleave(self.d_head, dim=0)[:, None, :]
        y = F.conv1d(v, weight.to(v.dtype), padding=self.max_rel, groups=self.d_model)
        return zero_padded_rows(split_heads(y.transpose(1, 2), self.n_heads), pad_mask)


@register("dynconv", cost="replaces attention: O(T ℓ d) + kernel generator",
          paper_term="dynamic lightweight convolution (Wu et al. 2019)",
          formula=r"\sum_{\lvert r\rvert\le \ell}\softmax_r(v_i W^{\mathrm{dyn}})^{(h)}_r\, v_{i+r}",
          rows_sum_to_one=False)
class DynamicConv(Convolution):
    """Kernel of each position predicted from that position's convolution input alone.

    As in fairseq's ``LightConvEncoderLayer`` + ``DynamicConv1dTBC``, the kernel generator
    reads the same vector the convolution mixes: u_i = GLU(x_i W_in + b_in), after the
    input projection and the GLU (``query=None`` there means "the input of the conv").
    """

    def __init__(self, d_model, n_heads, max_len, **options):
        super().__init__(d_model, n_heads, max_len, **options)
        # fairseq's weight_linear: Linear(d, H * (2ℓ+1)) without bias
        self.kernel_generator = nn.Linear(d_model, n_heads * (2 * self.max_rel + 1), bias=False)

    def kernel_from(self, u):
        B, T, _ = u.shape
        logits = self.kernel_generator(u).view(B, T, self.n_heads, -1).transpose(1, 2)
        return F.softmax(logits, dim=-1)                               # (B, H, T, 2ℓ+1)
