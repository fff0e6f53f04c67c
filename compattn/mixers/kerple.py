"""KERPLE's logarithmic bias (Chi et al. 2022): a learned, logarithmic ALiBi.

    logits_ij = q_i . k_j / sqrt(d_head)  -  r1^(h) log(1 + r2^(h) |j - i|)      r1, r2 > 0

KERPLE ("kernelized relative positional embedding for length extrapolation") builds the
position term from a conditionally positive definite kernel of the distance; the softmax
absorbs the constant that turns it into a positive definite one.  Of the kernels the paper
tries, this logarithmic one extrapolates best.

In the convolution frame of this book it is a *fixed lightweight convolution* with a
parametric kernel: one kernel per head over the offsets r = j - i, shared by every position
and not generated from a token, like T5's bucket biases and ALiBi's -m_h |r|.  Unlike ALiBi
its two parameters per head are learned, and its decay is logarithmic, not linear: the
kernel exp(-r1 log(1 + r2 |r|)) = (1 + r2 |r|)^(-r1) is a power law in the distance.

The position term is computed as one number per offset, an (H, 2T-1) table, and read at
offset j - i (ℓ = T - 1: nothing is clipped), as for T5; no (T, T, d) tensor, and FlexAttention
reads the same table inside its kernel.  Positivity as in the authors' code: r1 and r2 are
clamped to at least ``eps`` = 0.01 where they are used (the authors clamp the stored values
after each step; clamping in the forward pass gives the same numbers), initialised uniform
in (0, 2).
"""
from __future__ import annotations

import torch
from torch import nn

from ..registry import register
from .attention import Attention

EPS = 0.01


@register("kerple", cost="an (H, 2T-1) table of 2 parameters per head",
          paper_term="fixed lightweight convolution, parametric (logarithmic, learned)",
          formula=r"\softmax_j\big(q_i\cdot k_j/\sqrt{d_h} - r^{(h)}_1"
                  r"\log(1 + r^{(h)}_2\,\lvert j-i\rvert)\big)",
          tables={"kerple_r1": "r1", "kerple_r2": "r2"})
class KerpleAttention(Attention):
    """Content + a learned logarithmic distance penalty per head (KERPLE-log)."""

    def __init__(self, d_model, n_heads, max_len, **options):
        super().__init__(d_model, n_heads, max_len, **options)
        self.r1 = nn.Parameter(torch.rand(n_heads) * 2)
        self.r2 = nn.Parameter(torch.rand(n_heads) * 2)

    def per_offset(self, T: int) -> torch.Tensor:
        """(H, 2T-1): -r1 log(1 + r2 |r|) for every offset r = -(T-1) .. T-1."""
        distance = torch.arange(-(T - 1), T, device=self.r1.device).abs().to(self.r1.dtype)
        r1, r2 = self.r1.clamp(min=EPS), self.r2.clamp(min=EPS)
        return -r1[:, None] * torch.log1p(r2[:, None] * distance)

    def offset_tables(self, q, k, T):
        return self.per_offset(T)[None, :, None, :], None, T - 1, False
