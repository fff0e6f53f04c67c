"""Properties every registered variant must have, parametrised over compattn.variants()."""
import math

import pytest
import torch
from torch.testing import assert_close

import compattn

VARIANTS = compattn.variants()
# what each variant exposes is declared in its registry entry
NO_MATRIX = {n for n in VARIANTS if not compattn.entry(n).mixing_matrix}


def make(name, d_model=32, n_heads=4, max_len=32, dtype=torch.float32, seed=0, **opts):
    torch.manual_seed(seed)
    mixer = compattn.build(name, d_model=d_model, n_heads=n_heads, max_len=max_len, **opts)
    # non-zero relative tables, so every term really takes part in the checks
    with torch.no_grad():
        for pname, p in mixer.named_parameters():
            if p.abs().sum() == 0:
                p.normal_(0, 0.5)
    return mixer.to(dtype).eval()


def inputs(B=2, T=11, D=32, dtype=torch.float32, seed=1):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(B, T, D, generator=g, dtype=dtype)


def test_every_design_name_is_registered():
    design = {"absolute", "none", "shaw", "t5", "alibi", "rope", "lightconv", "dynconv",
              "composite_fixed", "composite_query", "composite_key", "composite", "convbert",
              "conv_qk", "conv_values", "conv_output", "kerple"}
    assert design <= set(VARIANTS)


@pytest.mark.parametrize("name", VARIANTS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16])
def test_shape_and_dtype(name, dtype):
    mixer = make(name, dtype=dtype)
    x = inputs(dtype=dtype)
    y = mixer(x)
    assert y.shape == x.shape and y.dtype == dtype
    assert torch.isfinite(y.float()).all()
    if name not in NO_MATRIX:
        A = mixer.mixing_matrix(x)
        assert A.shape == (2, 4, 11, 11)


@pytest.mark.parametrize("name", VARIANTS)
def test_every_parameter_gets_a_finite_gradient(name):
    mixer = make(name).train()
    x = inputs().requires_grad_()
    mixer(x).square().sum().backward()
    assert torch.isfinite(x.grad).all()
    for pname, p in mixer.named_parameters():
        assert p.grad is not None, f"{name}: parameter {pname} got no gradient"
        assert torch.isfinite(p.grad).all(), f"{name}: gradient of {pname} is not finite"


@pytest.mark.parametrize("name", VARIANTS)
def test_gradcheck_float64(name):
    mixer = make(name, d_model=8, n_heads=2, max_len=8, dtype=torch.float64, max_rel=2) \
        if "max_rel" in compattn.options(name) else make(name, d_model=8, n_heads=2, max_len=8,
                                                         dtype=torch.float64)
    x = inputs(B=1, T=5, D=8, dtype=torch.float64).requires_grad_()
    assert torch.autograd.gradcheck(lambda t: mixer(t), (x,), eps=1e-6, atol=1e-5)


@pytest.mark.parametrize("name", VARIANTS)
def test_padding_never_changes_real_positions(name):
    mixer = make(name)
    x = inputs(B=1, T=9)
    junk = inputs(B=1, T=4, seed=7) * 10
    padded = torch.cat([x, junk], dim=1)
    mask = torch.tensor([[True] * 9 + [False] * 4])
    assert_close(mixer(padded, mask)[:, :9], mixer(x), rtol=1e-5, atol=1e-5)
    if name not in NO_MATRIX:
        A_pad = mixer.mixing_matrix(padded, mask)
        assert_close(A_pad[..., :9, :9], mixer.mixing_matrix(x), rtol=1e-5, atol=1e-6)
        assert (A_pad[..., :, 9:] == 0).all(), "padded keys must get no weight"
        assert (A_pad[..., 9:, :] == 0).all(), "padded queries must put no weight anywhere"


@pytest.mark.parametrize("name", [n for n in VARIANTS if n not in NO_MATRIX])
def test_forward_is_mixing_matrix_times_values(name):
    # a window narrower than the sequence, so that rows both lose and keep all their taps
    mixer = make(name, max_rel=3) if "max_rel" in compattn.options(name) else make(name)
    x = inputs()
    mask = torch.ones(2, 11, dtype=torch.bool)
    mask[1, 8:] = False
    A = mixer.mixing_matrix(x, mask)
    expected = mixer.project_out(A @ mixer.values(x, mask))
    assert_close(mixer(x, mask), expected, rtol=1e-5, atol=1e-5)
    rows = A.sum(-1)
    if compattn.entry(name).rows_sum_to_one:     # a softmax over the sequence
        assert_close(rows[0], torch.ones_like(rows[0]))
        assert_close(rows[1, :, :8], torch.ones_like(rows[1, :, :8]))
        return
    # a zero-padded convolution loses taps at the edges only (attention heads lose none)
    rows, k = rows[0], mixer.max_rel                 # sequence 0 has no padding: (H, T)
    assert (rows <= 1 + 1e-5).all()
    assert_close(rows[:, k:11 - k], torch.ones_like(rows[:, k:11 - k]))
    assert (rows[:, 0] < 1 - 1e-3).any()


def test_conv_output_has_no_mixing_matrix():
    with pytest.raises(NotImplementedError):
        make("conv_output").mixing_matrix(inputs())


@pytest.mark.parametrize("name", VARIANTS)
def test_dropout_is_off_in_eval_and_deterministic(name):
    mixer = make(name, dropout=0.5).eval()
    x = inputs()
    assert_close(mixer(x), mixer(x))


def test_rows_that_sum_to_one_are_declared_truthfully():
    """The declaration is checked, not trusted: a convolution's edge rows lose weight."""
    x = inputs()
    for name in VARIANTS:
        if name in NO_MATRIX:
            continue
        opts = {"max_rel": 3} if "max_rel" in compattn.options(name) else {}
        rows = make(name, **opts).mixing_matrix(x).sum(-1)
        sums_to_one = bool(torch.allclose(rows, torch.ones_like(rows), atol=1e-5))
        assert sums_to_one == compattn.entry(name).rows_sum_to_one, name


@pytest.mark.parametrize("ratio", [1, 2, 4])
def test_convbert_works_for_every_head_ratio_dividing_n_heads(ratio):
    mixer = make("convbert", head_ratio=ratio)
    x = inputs()
    mask = torch.ones(2, 11, dtype=torch.bool)
    mask[1, 7:] = False
    A = mixer.mixing_matrix(x, mask)
    heads = 2 * (4 // ratio)                        # attention heads, then as many conv heads
    assert A.shape == (2, heads, 11, 11)
    assert_close(mixer(x, mask), mixer.project_out(A @ mixer.values(x, mask)), rtol=1e-5, atol=1e-5)
    mixer(x, mask).sum().backward()
    assert all(p.grad is not None for p in mixer.parameters())


def test_kerple_mixing_matrix_is_softmax_of_content_plus_the_log_bias():
    mixer = make("kerple", dtype=torch.float64)
    with torch.no_grad():
        mixer.r1.copy_(torch.tensor([0.5, 1.0, 2.0, 0.001]))   # the last is clamped to 0.01
        mixer.r2.copy_(torch.tensor([1.0, 0.3, 3.0, 1.0]))
    x = inputs(B=1, T=7, dtype=torch.float64)
    with torch.no_grad():
        q = (x @ mixer.query.weight.T + mixer.query.bias).view(7, 4, 8).transpose(0, 1)
        k = (x @ mixer.key.weight.T + mixer.key.bias).view(7, 4, 8).transpose(0, 1)
    expected = torch.empty(4, 7, 7, dtype=torch.float64)
    r1 = [0.5, 1.0, 2.0, 0.01]
    r2 = [1.0, 0.3, 3.0, 1.0]
    for h in range(4):
        for i in range(7):
            for j in range(7):
                expected[h, i, j] = (float(q[h, i] @ k[h, j]) / math.sqrt(8)
                                     - r1[h] * math.log(1 + r2[h] * abs(j - i)))
    assert_close(mixer.mixing_matrix(x)[0], torch.softmax(expected, -1))


def test_kerple_builds_no_t_by_t_by_d_tensor():
    mixer = make("kerple")
    assert mixer.offset_tables(None, None, 50)[0].shape == (1, 4, 1, 99)   # (1, H, 1, 2T-1)


def test_declared_tables_exist_and_zero_init_tables_start_at_zero():
    """Every declared table is a tensor of the module when its option is on; the encoder
    keeps the declared zero tables at zero."""
    from compattn.registry import table

    for name in VARIANTS:
        e = compattn.entry(name)
        mixer = compattn.build(name, 32, 4, 16)
        present = [path for path in e.tables.values() if table(mixer, path) is not None]
        assert len(present) >= min(1, len(e.tables)), name
        model = compattn.Encoder(compattn.EncoderConfig(variant=name, vocab_size=20, d_model=32,
                                                        n_heads=4, d_ff=32, max_len=16))
        for path in e.zero_init:
            value = table(model.blocks[0].mixer, path)
            assert value is None or (value == 0).all(), (name, path)
        assert (model.position_embedding is not None) == e.absolute_positions
