"""Bad input gets a ValueError that says what was wrong and what is allowed."""
import pytest
import torch

import compattn

from test_mixers import inputs


def test_unknown_variant_lists_the_valid_names():
    with pytest.raises(ValueError, match="unknown variant 'relative'.*composite.*lightconv"):
        compattn.build("relative")


def test_unknown_option_lists_the_allowed_ones():
    with pytest.raises(ValueError, match=r"no option\(s\) \['kernel'\].*max_rel"):
        compattn.build("composite", kernel=3)


def test_n_heads_must_divide_d_model():
    with pytest.raises(ValueError, match=r"n_heads \(3\) must divide d_model \(32\)"):
        compattn.build("none", d_model=32, n_heads=3)


@pytest.mark.parametrize("name", ["convbert", "lightconv", "dynconv"])
def test_even_kernel_width_is_rejected(name):
    with pytest.raises(ValueError, match="odd"):
        compattn.build(name, 32, 4, kernel_size=8)


@pytest.mark.parametrize("name", compattn.variants())
def test_wrong_rank_or_width(name):
    mixer = compattn.build(name, 32, 4, 16)
    with pytest.raises(ValueError, match=r"\(batch, time, d_model\)"):
        mixer(torch.randn(11, 32))
    with pytest.raises(ValueError, match="width 31 .* d_model=32"):
        mixer(torch.randn(2, 11, 31))


@pytest.mark.parametrize("name", compattn.variants())
def test_bad_pad_masks(name):
    mixer = compattn.build(name, 32, 4, 16)
    x = inputs()
    with pytest.raises(ValueError, match="bool"):
        mixer(x, torch.ones(2, 11))
    with pytest.raises(ValueError, match=r"shape \(batch, time\) = \(2, 11\)"):
        mixer(x, torch.ones(2, 10, dtype=torch.bool))
    with pytest.raises(ValueError, match="at least one real token"):
        mixer(x, torch.zeros(2, 11, dtype=torch.bool))


def test_sequence_longer_than_absolute_positions():
    mixer = compattn.build("absolute", 32, 4, max_len=8)
    with pytest.raises(ValueError, match="length 11 exceeds max_len=8"):
        mixer(inputs())
    # relative schemes are not tied to max_len
    compattn.build("composite", 32, 4, max_len=8)(inputs())


def test_bad_relative_options():
    with pytest.raises(ValueError, match="max_rel"):
        compattn.build("composite", max_rel=0)
    with pytest.raises(ValueError, match="'clip' or 'mask'"):
        compattn.build("composite", outside="zero")
    with pytest.raises(ValueError, match="at least one of"):
        compattn.build("composite", content=False, fixed=False, query=False, key=False)
    with pytest.raises(ValueError, match="even n_heads"):
        compattn.build("conv_qk", 30, 3)


def test_bad_encoder_config():
    with pytest.raises(ValueError, match="unknown variant"):
        compattn.EncoderConfig(variant="bert")
    with pytest.raises(ValueError, match="norm must be 'pre' or 'post'"):
        compattn.EncoderConfig(norm="sandwich")
