"""compattn: relative positions, convolutions and self-attention behind one interface.

    >>> import compattn
    >>> mixer = compattn.build("composite", d_model=64, n_heads=4, max_len=128)
    >>> y = mixer(x)                      # (B, T, 64) -> (B, T, 64)
    >>> A = mixer.mixing_matrix(x)        # (B, 4, T, T)

Attention runs on one of four paths (plain, SDPA, block-by-block, FlexAttention) chosen in
one place, ``compattn.mixers.paths.choose_path``; ``build(..., path="plain")`` forces one.
What each variant exposes is declared in its registry entry, ``compattn.entry(name)``.
"""
from . import mixers as _mixers  # noqa: F401  (registers every variant)
from .encoder import Encoder, EncoderConfig, masked_lm_loss, mixer_parameter_count, parameter_counts
from .registry import build, entry, options, register, variants

__all__ = ["build", "variants", "options", "entry", "register", "Encoder", "EncoderConfig",
           "parameter_counts", "mixer_parameter_count", "masked_lm_loss"]
__version__ = "0.1.0"
