"""The one interface every variant implements.

A *token mixer* maps ``x`` (B, T, D) to (B, T, D) by letting each position take a weighted
combination of the (projected) positions around it.  For every variant that has one, those
weights form a mixing matrix ``A`` (B, H, T, T) -- head ``h`` of output position ``i`` is
``sum_j A[h, i, j] * values[h, j]`` -- and the output is ``project_out(A @ values)``.
Attention rows are softmax-normalised; a zero-padded convolution's rows lose their
out-of-sequence taps at the edges.
"""
from __future__ import annotations

import torch
from torch import nn

from ..registry import SIZE, check_options, number

#: attention dropout (on the weights) or DropConnect (on a convolution's kernel), training only
DROPOUT = number(0.0, "a number in [0, 1)", lambda p: 0 <= p < 1)


class Mixer(nn.Module):
    """Base class: options, input checks, head bookkeeping, output projection.

    A variant declares its options in ``OPTIONS`` (name -> ``registry.Option``) and
    implements ``heads`` (the forward pass before the output projection) and, if it has a
    mixing matrix, ``mixing_weights``.  What it exposes beyond that (kernel tables, whether its
    rows sum to one, ...) is declared in its registry entry (``registry.Entry``).
    """

    OPTIONS: dict = {}
    #: whether the encoder adds learned absolute positions (set by ``build`` from the entry)
    uses_absolute_positions: bool = False

    def __init__(self, d_model: int, n_heads: int, max_len: int, **options):
        super().__init__()
        for name, value in (("d_model", d_model), ("n_heads", n_heads), ("max_len", max_len)):
            SIZE.check(name, value)
        if d_model % n_heads:
            raise ValueError(f"n_heads ({n_heads}) must divide d_model ({d_model})")
        self.options = check_options(type(self), options)
        self.d_model, self.n_heads, self.max_len = d_model, n_heads, max_len
        self.d_head = d_model // n_heads
        self.out = nn.Linear(d_model, d_model)

    # --- the interface -----------------------------------------------------------------
    def forward(self, x: torch.Tensor, pad_mask: torch.Tensor | None = None) -> torch.Tensor:
        x, pad_mask = self.prepare(x, pad_mask)
        return self.project_out(self.heads(x, pad_mask))

    def mixing_matrix(self, x: torch.Tensor, pad_mask: torch.Tensor | None = None) -> torch.Tensor:
        """(B, H, T, T) weights each head puts on each position (rows of padded positions
        and columns of padded keys are zero)."""
        return self.mixing_weights(*self.prepare(x, pad_mask))

    def heads(self, x: torch.Tensor, pad_mask: torch.Tensor | None) -> torch.Tensor:
        """(B, H, T, d_head): the output before the heads are merged and projected, for a
        checked ``x`` whose padded rows are zero."""
        raise NotImplementedError

    def mixing_weights(self, x: torch.Tensor, pad_mask: torch.Tensor | None) -> torch.Tensor:
        """``mixing_matrix`` for a checked ``x`` whose padded rows are zero."""
        raise NotImplementedError(f"{type(self).__name__} has no per-head mixing matrix")

    def values(self, x: torch.Tensor, pad_mask: torch.Tensor | None = None) -> torch.Tensor:
        """(B, H, T, d_head): what the mixing matrix multiplies."""
        raise NotImplementedError

    def project_out(self, heads: torch.Tensor) -> torch.Tensor:
        """(B, H, T, d_head) -> (B, T, D): concatenate the heads, then the output Linear."""
        return self.out(merge_heads(heads))

    # --- input checks ------------------------------------------------------------------
    def prepare(self, x: torch.Tensor, pad_mask: torch.Tensor | None):
        """Check the input, then overwrite padded rows of ``x`` with zeros, so that whatever
        they held (NaN, inf, 1e30) cannot reach a real position.  Returns ``(x, pad_mask)``."""
        pad_mask = self.check_input(x, pad_mask)
        return zero_padding(x, pad_mask), pad_mask

    def check_input(self, x: torch.Tensor, pad_mask: torch.Tensor | None) -> torch.Tensor | None:
        """Raise ``ValueError`` on malformed input; return ``pad_mask`` or ``None``."""
        if not isinstance(x, torch.Tensor) or x.dim() != 3:
            shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            raise ValueError(f"x must be a (batch, time, d_model) tensor, got shape {shape}")
        B, T, D = x.shape
        if D != self.d_model:
            raise ValueError(f"x has width {D} but this mixer was built with d_model={self.d_model}")
        check_not_empty(B, T)
        weight = self.out.weight
        if x.device != weight.device:
            raise ValueError(f"x is on {x.device} but this mixer's parameters are on "
                             f"{weight.device}; move one of them (mixer.to(x.device))")
        if x.dtype != weight.dtype and not _autocast(x.device):
            raise ValueError(f"x has dtype {x.dtype} but this mixer's parameters are "
                             f"{weight.dtype}; convert one (mixer.to(x.dtype)) or run under "
                             "torch.autocast")
        if self.uses_absolute_positions and T > self.max_len:
            raise ValueError(f"sequence length {T} exceeds max_len={self.max_len}, the number "
                             "of learned absolute positions; build with a larger max_len")
        if pad_mask is None:
            return None
        if not isinstance(pad_mask, torch.Tensor) or pad_mask.dtype != torch.bool:
            kind = pad_mask.dtype if isinstance(pad_mask, torch.Tensor) else type(pad_mask).__name__
            raise ValueError(f"pad_mask must be a bool tensor (True = real token), got {kind}")
        if tuple(pad_mask.shape) != (B, T):
            raise ValueError(f"pad_mask must have shape (batch, time) = {(B, T)}, "
                             f"got {tuple(pad_mask.shape)}")
        if pad_mask.device != x.device:
            raise ValueError(f"pad_mask is on {pad_mask.device} but x is on {x.device}")
        # The only check that reads the mask's values, so on a GPU it would stall every layer
        # until the device catches up (a host sync): it runs where that costs nothing, on a
        # CPU and outside a compiled graph.  Elsewhere an all-padding row is harmless: every
        # path gives zeros for a row without an allowed key, never NaN.
        if (pad_mask.device.type == "cpu" and not torch.compiler.is_compiling()
                and not pad_mask.any(dim=1).all()):
            raise ValueError("every sequence needs at least one real token (a pad_mask row is all False)")
        return pad_mask


def check_not_empty(B: int, T: int) -> None:
    if B == 0:
        raise ValueError("x is an empty batch (batch size 0); pass at least one sequence")
    if T == 0:
        raise ValueError("x has no positions (T = 0)")


def _autocast(device: torch.device) -> bool:
    try:
        return torch.is_autocast_enabled(device.type)
    except TypeError:                          # a torch without the device argument
        return torch.is_autocast_enabled()


# --- small helpers shared by the variants --------------------------------------------------
def split_heads(x: torch.Tensor, n_heads: int) -> torch.Tensor:
    """(B, T, H * d) -> (B, H, T, d)."""
    B, T, D = x.shape
    return x.view(B, T, n_heads, D // n_heads).transpose(1, 2)


def merge_heads(x: torch.Tensor) -> torch.Tensor:
    """(B, H, T, d) -> (B, T, H * d)."""
    B, H, T, d = x.shape
    return x.transpose(1, 2).reshape(B, T, H * d)


def zero_padding(x: torch.Tensor, pad_mask: torch.Tensor | None) -> torch.Tensor:
    """(B, T, D) with the rows of padded positions overwritten by zeros (``masked_fill``, not
    a product: 0 * NaN is NaN), so a convolution or a projection cannot carry them into real ones."""
    return x if pad_mask is None else x.masked_fill(~pad_mask[..., None], 0.0)


def zero_padded_rows(heads: torch.Tensor, pad_mask: torch.Tensor | None) -> torch.Tensor:
    """(B, H, T, d) with the rows of padded positions set to zero."""
    return heads if pad_mask is None else heads.masked_fill(~pad_mask[:, None, :, None], 0.0)

