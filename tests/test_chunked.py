"""The block-by-block relative attention (``mixers/chunked.py``) against the plain reference."""
import pytest
import torch
from torch.testing import assert_close

import compattn
import compattn.mixers.chunked as chunked
from compattn.bench import saved_bytes
from compattn.mixers.paths import BLOCK_FROM, Scores, choose_path
from compattn.positions import place_band, place_clipped

RELATIVE = ["composite", "composite_fixed", "composite_query", "composite_key", "shaw"]


@pytest.fixture
def small_blocks(monkeypatch):
    """Blocks of a few rows, so every test crosses block boundaries."""
    monkeypatch.setattr(chunked, "BLOCK_NUMBERS", 1)    # -> the minimum, 16 rows per block


@pytest.mark.parametrize("pads", [3, 10])
@pytest.mark.parametrize("band", [False, True])
@pytest.mark.parametrize("terms", ["both", "fixed", "query", "key"])
def test_function_matches_softmax_of_placed_tables(small_blocks, band, terms, pads):
    torch.manual_seed(0)
    B, H, T, d, ell = 2, 3, 37, 8, 4
    W = 2 * ell + 1
    q, keys, v = (torch.randn(B, H, T, d, dtype=torch.float64, requires_grad=True) for _ in range(3))
    fixed = torch.randn(1, H, 1, W, dtype=torch.float64, requires_grad=True)
    generated = torch.randn(B, H, T, W, dtype=torch.float64, requires_grad=True)
    by_key = torch.randn(B, H, T, W, dtype=torch.float64, requires_grad=True)
    pad = torch.ones(B, T, dtype=torch.bool)
    # 3 pads: every row keeps a real key in its band; 10 (> ℓ) with a band: the last padded
    # rows have none, and must give zeros (not NaN), gradients included
    pad[1, -pads:] = False
    per_query = {"both": generated + fixed, "fixed": fixed, "query": generated, "key": None}[terms]
    per_key = by_key if terms in ("both", "key") else None
    place = (lambda t: place_band(t, ell, float("-inf"))) if band else (lambda t: place_clipped(t, ell))
    logits = q @ keys.mT * 0.3
    if per_query is not None:
        logits = logits + place(per_query.expand(per_query.shape[0], H, T, W))
    if per_key is not None:
        logits = logits + place(per_key).mT
    logits = logits.masked_fill(~pad[:, None, None, :], float("-inf"))
    dead = (logits == float("-inf")).all(-1, keepdim=True)
    assert dead.any() == (band and pads > ell)
    reference = torch.softmax(logits.masked_fill(dead, 0), -1).masked_fill(dead, 0) @ v
    scores = Scores(T, q, keys, 0.3, per_query, per_key, max_rel=ell, band=band, pad_mask=pad)
    out = chunked.chunked_relative_attention(scores, v)
    assert_close(out, reference)
    assert torch.isfinite(out).all()
    grad = torch.randn_like(out)
    inputs = [q, keys, v, fixed, generated, by_key]
    expected = torch.autograd.grad(reference, inputs, grad, allow_unused=True)
    got = torch.autograd.grad(out, inputs, grad, allow_unused=True)
    for name, a, b in zip(["q", "k", "v", "fixed", "generated", "by_key"], got, expected):
        assert (a is None) == (b is None), name
        if a is not None:
            assert_close(a, b, msg=lambda m: f"gradient of {name}: {m}")


@pytest.mark.parametrize("name", RELATIVE)
@pytest.mark.parametrize("outside", ["clip", "mask"])
def test_mixers_give_the_same_numbers_on_both_paths(small_blocks, name, outside):
    if name == "shaw" and outside == "mask":
        pytest.skip("shaw has no outside option")
    torch.manual_seed(1)
    opts = {} if name == "shaw" else {"outside": outside}
    plain = compattn.build(name, 32, 4, 64, max_rel=3, path="sdpa", **opts).double()
    if hasattr(plain, "fixed_kernel"):
        torch.nn.init.normal_(plain.fixed_kernel)      # non-zero, so the fixed term is tested
    fast = compattn.build(name, 32, 4, 64, max_rel=3, path="block", **opts).double()
    fast.load_state_dict(plain.state_dict())
    x = torch.randn(2, 41, 32, dtype=torch.float64, requires_grad=True)
    pad = torch.ones(2, 41, dtype=torch.bool)
    pad[0, -2:] = False
    grad = torch.randn(2, 41, 32, dtype=torch.float64)
    outputs = []
    for mixer in (plain, fast):
        y = mixer(x, pad)
        grads = torch.autograd.grad(y, [x, *mixer.parameters()], grad)
        outputs.append((y, grads))
    assert_close(outputs[1][0], outputs[0][0])
    for a, b in zip(outputs[1][1], outputs[0][1]):
        assert_close(a, b)


def test_long_sequences_select_the_block_path_and_save_no_t_by_t_matrix():
    torch.manual_seed(2)
    T = BLOCK_FROM
    mixer = compattn.build("composite", 16, 2, T, max_rel=4)
    x = torch.randn(1, T, 16, requires_grad=True)
    grad = torch.randn(1, T, 16)
    automatic = saved_bytes(mixer, mixer, x, grad)
    mixer.path = "sdpa"
    plain = saved_bytes(mixer, mixer, x, grad)
    probabilities = 2 * T * T * 4                       # one (H, T, T) float32 matrix
    assert plain >= probabilities > 4 * automatic


CPU = torch.device("cpu")


def auto(**changes):
    """choose_path for a long windowed float32 sequence on a CPU, with some changes."""
    conditions = dict(device=CPU, dtype=torch.float32, T=BLOCK_FROM, tables=True, window=True,
                      dropout=0.0, training=True)
    return choose_path(**{**conditions, **changes})


def test_choose_path_keeps_the_benchmark_choices():
    assert auto() == "block"
    assert auto(T=BLOCK_FROM - 1) == "sdpa"             # short: the fused path
    assert auto(window=False) == "sdpa"                  # t5, alibi, kerple: one entry per offset
    assert auto(tables=False, window=False) == "sdpa"    # no position term
    assert auto(dtype=torch.bfloat16) == "sdpa"          # the blocks run in the input's precision
    assert auto(dtype=torch.float64) == "block"
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert auto() == "sdpa"


def test_attention_dropout_falls_back_to_sdpa():
    assert auto(dropout=0.1) == "sdpa"                   # training with attention dropout
    assert auto(dropout=0.1, training=False) == "block"
    with pytest.raises(ValueError, match="'block' path has no attention dropout.* dropout=0"):
        compattn.build("composite", 16, 2, 32, path="block", dropout=0.1)


def test_path_option_is_checked():
    with pytest.raises(ValueError, match="path must be one of 'auto', 'plain', 'sdpa', 'block', 'flex', got 'chunked'"):
        compattn.build("composite", 16, 2, 32, path="chunked")


def test_flex_is_automatic_only_on_cuda():
    from compattn.mixers.flex import flex_available

    assert auto(device=torch.device("cuda")) == ("flex" if flex_available() else "block")
    assert auto(device=torch.device("cuda"), tables=False, window=False) == "sdpa"
    assert "flex" not in {auto(T=T, dtype=d) for T in (8, BLOCK_FROM)
                          for d in (torch.float32, torch.bfloat16)}


# --- FlexAttention (fused on CUDA; its forward pass also runs, unfused, on a CPU) ---------------
FLEX = ["composite", "composite_fixed", "composite_key", "shaw", "t5", "composite-mask", "kerple",
        "alibi"]


@pytest.mark.filterwarnings("ignore:flex_attention called without torch.compile")
@pytest.mark.parametrize("name", FLEX)
def test_flex_score_mod_gives_the_reference_numbers(name):
    from compattn.mixers.flex import flex_available

    if not flex_available():
        pytest.skip("this torch has no FlexAttention")
    torch.manual_seed(3)
    opts = {"max_rel": 3} if "max_rel" in compattn.options(name.removesuffix("-mask")) else {}
    if name == "t5":
        opts = {"num_buckets": 8, "max_distance": 16}
    if name.endswith("-mask"):
        name, opts["outside"] = name.removesuffix("-mask"), "mask"
    mixer = compattn.build(name, 32, 4, 64, **opts).eval()
    for p in mixer.parameters():          # zero-initialised tables too: every term non-trivial
        torch.nn.init.normal_(p, std=0.3)
    x = torch.randn(2, 23, 32)
    pad = torch.ones(2, 23, dtype=torch.bool)
    pad[1, -4:] = False
    with torch.no_grad():
        mixer.path = "plain"
        reference = mixer(x, pad)
        mixer.path = "flex"
        fused = mixer(x, pad)
    assert_close(fused, reference, rtol=1e-4, atol=1e-5)


# --- what FlexAttention's score_mod captures ------------------------------------------------
def captured_elements(score_mod) -> int:
    """Elements of every tensor reachable from the score_mod's closure (nested functions too)."""
    seen, total, stack = set(), 0, [score_mod]
    while stack:
        fn = stack.pop()
        for cell in fn.__closure__ or ():
            value = cell.cell_contents
            if isinstance(value, torch.Tensor) and id(value) not in seen:
                seen.add(id(value))
                total += value.numel()
            elif callable(value) and getattr(value, "__closure__", None) is not None:
                stack.append(value)
    return total


@pytest.mark.filterwarnings("ignore:flex_attention called without torch.compile")
@pytest.mark.parametrize("name", ["t5", "kerple", "alibi", "composite", "composite_fixed", "shaw"])
def test_flex_captures_no_big_tables(monkeypatch, name):
    from compattn.mixers import flex

    if not flex.flex_available():
        pytest.skip("this torch has no FlexAttention")
    seen = []
    real = flex._attention_fn

    def spy(compiled):
        attention = real(compiled)

        def wrapped(q, k, v, *, score_mod, **kwargs):
            seen.append(score_mod)
            return attention(q, k, v, score_mod=score_mod, **kwargs)
        return wrapped

    monkeypatch.setattr(flex, "_attention_fn", spy)
    B, H, T, ell = 3, 4, 40, 2
    opts = {"max_rel": ell} if "max_rel" in compattn.options(name) else {}
    mixer = compattn.build(name, 32, H, 64, path="flex", **opts).eval()
    pad = torch.ones(B, T, dtype=torch.bool)
    pad[1, -5:] = False
    with torch.no_grad():
        mixer(torch.randn(B, T, 32), pad)
    (score_mod,) = seen
    elements = captured_elements(score_mod)
    if opts:      # relative: tables of 2ℓ+1 columns per query or key
        assert elements <= 2 * B * H * T * (2 * ell + 1) + B * T + 1
    else:         # one number per offset and head: O(H T), plus the (B, T) padding mask
        assert elements <= H * (2 * T - 1) + B * T + 1
