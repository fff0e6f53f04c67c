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


@pytest.mark.parametrize("name", compattn.variants())
def test_dtype_and_device_must_match_the_parameters(name):
    mixer = compattn.build(name, 32, 4, 16)
    with pytest.raises(ValueError, match=r"dtype torch.float64 .* torch.float32.*mixer.to"):
        mixer(inputs().double())
    with pytest.raises(ValueError, match=r"x is on meta but this mixer's parameters are on cpu"):
        mixer(torch.empty(2, 11, 32, device="meta"))
    with torch.autocast("cpu", dtype=torch.bfloat16):     # autocast decides the dtypes
        assert mixer(inputs().bfloat16()).shape == (2, 11, 32)


@pytest.mark.parametrize("name", compattn.variants())
def test_an_empty_batch_is_refused_by_every_variant(name):
    mixer = compattn.build(name, 32, 4, 16)
    with pytest.raises(ValueError, match="empty batch"):
        mixer(torch.randn(0, 11, 32))
    if compattn.entry(name).mixing_matrix:
        with pytest.raises(ValueError, match="empty batch"):
            mixer.mixing_matrix(torch.randn(0, 11, 32))


@pytest.mark.parametrize("name", [n for n in compattn.variants() if "dropout" in compattn.options(n)])
@pytest.mark.parametrize("p", [-0.1, 1.0, 1.5, "0.1", False, float("nan")])
def test_dropout_must_be_a_probability_below_one(name, p):
    with pytest.raises(ValueError, match=r"dropout must be a number in \[0, 1\)"):
        compattn.build(name, 32, 4, 16, dropout=p)


def test_t5_max_distance_must_leave_room_for_its_buckets():
    with pytest.raises(ValueError, match=r"max_distance must be an int >= num_buckets // 2 = 16"):
        compattn.build("t5", num_buckets=32, max_distance=8)
    with pytest.raises(ValueError, match="even int >= 4"):
        compattn.build("t5", num_buckets=7)
    compattn.build("t5", num_buckets=32, max_distance=16)


def test_t5_has_no_dead_direction_option():
    assert "bidirectional" not in compattn.options("t5")


@pytest.mark.parametrize("name", ["lightconv", "dynconv"])
def test_kernel_size_and_max_rel_must_agree(name):
    with pytest.raises(ValueError, match=r"kernel_size=7 means max_rel=3 .* max_rel=2"):
        compattn.build(name, 32, 4, kernel_size=7, max_rel=2)
    assert compattn.build(name, 32, 4, kernel_size=7, max_rel=3).max_rel == 3
    assert compattn.build(name, 32, 4, kernel_size=7).max_rel == 3
    assert compattn.build(name, 32, 4).max_rel == 8


def test_a_preset_refuses_options_that_make_it_another_variant():
    with pytest.raises(ValueError, match=r"'composite_fixed' fixes .* cannot take \{'query': True\}"
                                         r".*build\('composite', fixed=True, query=True, key=False\)"):
        compattn.build("composite_fixed", query=True)
    with pytest.raises(ValueError, match=r"that is the variant 'composite_key'"):
        compattn.build("composite_query", query=False, key=True)
    compattn.build("composite_fixed", query=False)             # agrees with the preset
    compattn.build("composite", fixed=False, query=False, key=False)


def test_path_and_relative_values_must_fit_together():
    with pytest.raises(ValueError, match="relative_values=True .* path must be 'auto' or 'plain'"):
        compattn.build("shaw", relative_values=True, path="block")


@pytest.mark.parametrize("ratio", [0, 3, 8, 1.5])
def test_convbert_head_ratio_must_divide_n_heads(ratio):
    with pytest.raises(ValueError, match=r"head_ratio must be a positive int dividing n_heads"):
        compattn.build("convbert", 32, 4, head_ratio=ratio)


WRONG_KINDS = [
    ("composite", "max_rel", True, "a positive int"),
    ("conv_qk", "max_rel", False, "a non-negative int"),
    ("lightconv", "kernel_size", True, "a positive odd int"),
    ("convbert", "kernel_size", True, "a positive odd int"),
    ("convbert", "head_ratio", True, "a positive int"),
    ("t5", "num_buckets", True, "an even int"),
    ("composite", "content", "no", "True or False"),
    ("composite", "query", 1, "True or False"),
    ("conv_output", "scaled", "no", "True or False"),
    ("t5", "unscaled_content", "yes", "True or False"),
    ("composite", "outside", True, "'clip' or 'mask'"),
    ("rope", "base", True, "a positive number"),
    ("rope", "base", 0, "a positive number"),
    ("rope", "base", -10000.0, "a positive number"),
    ("rope", "base", float("inf"), "a positive number")]


@pytest.mark.parametrize("name, option, value, allowed", WRONG_KINDS,
                         ids=[f"{name}-{option}={value}" for name, option, value, _ in WRONG_KINDS])
def test_bools_are_not_numbers_and_strings_are_not_flags(name, option, value, allowed):
    with pytest.raises(ValueError, match=f"{option} must be {allowed}.*, got {value!r}"):
        compattn.build(name, 32, 4, 16, **{option: value})


@pytest.mark.parametrize("size", ["d_model", "n_heads", "max_len"])
def test_sizes_are_positive_ints_not_bools(size):
    with pytest.raises(ValueError, match=f"{size} must be a positive int, got True"):
        compattn.build("none", **{"d_model": 4, "n_heads": 1, "max_len": 8, size: True})
    with pytest.raises(ValueError, match=f"{size} must be a positive int, got True"):
        compattn.EncoderConfig(**{size: True})
