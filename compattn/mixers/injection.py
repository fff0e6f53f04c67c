"""Depthwise(-separable) convolutions injected into dot-product attention (Chang et al. 2021).

Three places a convolution can enter an attention layer, each as in the authors' code:

* ``conv_qk``     queries and keys come from a depthwise-separable convolution of x on
                  half of the heads (``--qk=convolution_depth_mixed_no_act k``);
* ``conv_values`` the values do (``--value_forward=convolution_depth_mixed_no_act k``);
* ``conv_output`` a depthwise convolution of the projected values is added to the
                  attention output (``--attention_kernel=qk_convolution k``).

"Mixed" means the first H/2 heads are convolutional and the others keep a Linear
projection; "no_act" means no GELU between the depthwise and pointwise parts.  Padded rows
are zeroed before every convolution.
"""
from __future__ import annotations

import torch
from torch import nn

from ..registry import flag, integer, register
from .attention import PATH, Attention
from .base import DROPOUT, split_heads, zero_padded_rows, zero_padding


class MixedSeparableProjection(nn.Module):
    """x (B, T, D) -> [pointwise(depthwise_conv(x)) (D/2) ; Linear(x) (D/2)]."""

    def __init__(self, d_model: int, max_rel: int):
        super().__init__()
        self.depthwise = nn.Conv1d(d_model, d_model, 2 * max_rel + 1, padding=max_rel, groups=d_model)
        self.pointwise = nn.Linear(d_model, d_model // 2)
        self.linear = nn.Linear(d_model, d_model // 2)

    def forward(self, x, pad_mask):
        convolved = self.depthwise(zero_padding(x, pad_mask).transpose(1, 2)).transpose(1, 2)
        return torch.cat([self.pointwise(convolved), self.linear(x)], dim=-1)


class InjectedConvolution(Attention):
    OPTIONS = {"max_rel": integer(8, "a non-negative int (ℓ, taps per direction)", lambda n: n >= 0),
               "dropout": DROPOUT, "path": PATH}   # no content option: the convolutions need q.k

    def __init__(self, d_model, n_heads, max_len, **options):
        if n_heads % 2:
            raise ValueError(f"convolutions on half of the heads need an even n_heads, got {n_heads}")
        super().__init__(d_model, n_heads, max_len, **options)
        self.max_rel = self.options["max_rel"]


@register("conv_qk", cost="two depthwise convolutions O(T ℓ D)",
          paper_term="depthwise-separable conv on queries/keys (half the heads)",
          formula=r"q, k \leftarrow [\mathrm{SepConv}(x);\ xW]")
class ConvQueriesKeys(InjectedConvolution):
    def __init__(self, d_model, n_heads, max_len, **options):
        super().__init__(d_model, n_heads, max_len, **options)
        self.query = MixedSeparableProjection(d_model, self.max_rel)
        self.key = MixedSeparableProjection(d_model, self.max_rel)

    def queries_keys(self, x, pad_mask):
        return (split_heads(self.query(x, pad_mask), self.n_heads),
                split_heads(self.key(x, pad_mask), self.n_heads))


@register("conv_values", cost="one depthwise convolution O(T ℓ D)",
          paper_term="depthwise-separable conv on values (half the heads)",
          formula=r"v \leftarrow [\mathrm{SepConv}(x);\ xW]")
class ConvValues(InjectedConvolution):
    def __init__(self, d_model, n_heads, max_len, **options):
        super().__init__(d_model, n_heads, max_len, **options)
        self.value = MixedSeparableProjection(d_model, self.max_rel)

    def values(self, x, pad_mask=None):
        return split_heads(self.value(x, pad_mask), self.n_heads)


@register("conv_output", cost="one depthwise convolution O(T ℓ D)",
          paper_term="depthwise conv added to the attention output",
          formula=r"y_i = \sum_j\alpha_{ij}v_j + s_h\,(\mathrm{DWConv}(v))_i",
          mixing_matrix=False)
class ConvOutput(InjectedConvolution):
    """attention + s_h * depthwise_conv(v); s_h is fixed at 1 unless ``scaled=True``.

    The convolution has a separate kernel per channel, so there is no per-head (T, T)
    mixing matrix: ``mixing_matrix`` raises ``NotImplementedError``.
    """

    OPTIONS = {**InjectedConvolution.OPTIONS, "scaled": flag(False)}

    def __init__(self, d_model, n_heads, max_len, **options):
        super().__init__(d_model, n_heads, max_len, **options)
        self.convolution = nn.Conv1d(d_model, d_model, 2 * self.max_rel + 1, padding=self.max_rel,
                                     groups=d_model)
        scale = torch.ones(1, n_heads, 1, 1)
        if self.options["scaled"]:
            self.convolution_scale = nn.Parameter(scale)
        else:
            self.register_buffer("convolution_scale", scale, persistent=False)

    def heads(self, x, pad_mask):
        v = zero_padding(self.value(x), pad_mask)          # the value bias would fill padded rows
        convolved = split_heads(self.convolution(v.transpose(1, 2)).transpose(1, 2), self.n_heads)
        # padded rows of the output are zero, as for every variant
        return super().heads(x, pad_mask) + zero_padded_rows(self.convolution_scale * convolved, pad_mask)

    def mixing_weights(self, x, pad_mask):
        raise NotImplementedError("conv_output adds a per-channel depthwise convolution, which has no "
                                  "per-head (T, T) mixing matrix")
