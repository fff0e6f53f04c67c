"""Properties every registered variant must have, parametrised over compattn.variants()."""
import math

import pytest
import torch
import torch.nn.functional as F
from torch.testing import assert_close

import compattn
from compattn.positions import t5_bucket

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
    # junk where there is no token: NaN and inf as well as large finite numbers (0 * NaN is NaN,
    # so a padded row that is multiplied by zero instead of overwritten would leak)
    junk = torch.tensor([float("nan"), float("inf"), -float("inf"), 1e30]).repeat(32)[:4 * 32]
    padded = torch.cat([x, junk.view(1, 4, 32)], dim=1)
    mask = torch.tensor([[True] * 9 + [False] * 4])
    y = mixer(padded, mask)
    assert torch.isfinite(y).all()
    assert_close(y[:, :9], mixer(x), rtol=1e-5, atol=1e-5)
    if name not in NO_MATRIX:
        A_pad = mixer.mixing_matrix(padded, mask)
        assert_close(A_pad[..., :9, :9], mixer.mixing_matrix(x), rtol=1e-5, atol=1e-6)
        assert (A_pad[..., :, 9:] == 0).all(), "padded keys must get no weight"
        assert (A_pad[..., 9:, :] == 0).all(), "padded queries must put no weight anywhere"


# --- the formulas, written out again from the parameters (no library code but t5_bucket) -----
def linear(x, layer):
    return x @ layer.weight.T + (0 if layer.bias is None else layer.bias)


def by_heads(t, H):                                  # (B, T, H * d) -> (B, H, T, d)
    B, T, D = t.shape
    return t.reshape(B, T, H, D // H).permute(0, 2, 1, 3)


def depthwise(x, conv, ell):                         # a depthwise Conv1d over time, zero-padded
    return F.conv1d(x.transpose(1, 2), conv.weight, conv.bias, padding=ell,
                    groups=x.shape[-1]).transpose(1, 2)


def band(kernel, ell):
    """(B, H, T, T) from per-position kernels (B, H, T, 2ℓ+1): entry (i, j) is row i's tap j - i,
    zero beyond ±ℓ."""
    T = kernel.shape[2]
    r = torch.arange(T)[None, :] - torch.arange(T)[:, None]
    taps = kernel[:, :, torch.arange(T)[:, None], r.clamp(-ell, ell) + ell]
    return taps.masked_fill(r.abs() > ell, 0.0)


def formula(mixer, x, mask):
    """``(A, v)``: the mixing matrix (B, H, T, T) and the values (B, H, T, d) of ``mixer`` for
    ``x`` (B, T, D) with padding ``mask``, from the variant's equation."""
    name, H, d = mixer.variant, mixer.n_heads, mixer.d_head
    x = torch.where(mask[..., None], x, 0.0)         # padded tokens are absent
    B, T, D = x.shape
    r = torch.arange(T)[None, :] - torch.arange(T)[:, None]           # j - i
    real = mask[:, None, :, None] & mask[:, None, None, :]
    if name in ("lightconv", "dynconv"):
        u = linear(x, mixer.value)
        u = (u[..., :D] * torch.sigmoid(u[..., D:])) * mask[..., None]   # GLU, zero at padding
        if name == "lightconv":
            kernel = torch.softmax(mixer.weight, -1)[None, :, None, :]
        else:
            kernel = torch.softmax((u @ mixer.kernel_generator.weight.T).view(B, T, H, -1), -1)
            kernel = kernel.permute(0, 2, 1, 3)
        A = band(kernel.expand(B, H, T, kernel.shape[-1]), mixer.max_rel).masked_fill(~real, 0.0)
        return A, by_heads(u, H)
    if name == "convbert":
        Hc, K = mixer.attention_heads, mixer.kernel_size
        q, k = by_heads(linear(x, mixer.query), Hc), by_heads(linear(x, mixer.key), Hc)
        logits = (q @ k.transpose(-1, -2)) / math.sqrt(d)
        attention = torch.softmax(logits.masked_fill(~mask[:, None, None, :], float("-inf")), -1)
        span = F.conv1d(depthwise(x, mixer.span_key.depthwise, K // 2).transpose(1, 2),
                        mixer.span_key.pointwise.weight) + mixer.span_key.bias
        generated = linear(linear(x, mixer.query) * span.transpose(1, 2), mixer.kernel_generator)
        kernel = torch.softmax(generated.view(B, T, Hc, K), -1).permute(0, 2, 1, 3)
        A = torch.cat([attention, band(kernel, K // 2)], 1).masked_fill(~real, 0.0)
        values = torch.cat([linear(x, mixer.value), linear(x, mixer.conv_value) * mask[..., None]], -1)
        return A, by_heads(values, 2 * Hc)

    def mixed_separable(proj):                        # [pointwise(depthwise(x)) ; Linear(x)]
        return torch.cat([linear(depthwise(x, proj.depthwise, mixer.max_rel), proj.pointwise),
                          linear(x, proj.linear)], -1)

    project = {"conv_qk": mixed_separable}.get(name, lambda layer: linear(x, layer))
    v = by_heads(mixed_separable(mixer.value) if name == "conv_values" else linear(x, mixer.value), H)
    content = getattr(mixer, "content", True)
    if content or name.startswith("composite") or name == "shaw":
        q, k = by_heads(project(mixer.query), H), by_heads(project(mixer.key), H)
    if name == "rope":                                # rotate (x_t, x_{t + d/2}) by angle i theta_t
        theta = 10000.0 ** (-torch.arange(d // 2, dtype=x.dtype) * 2 / d)
        angle = torch.arange(T, dtype=x.dtype)[:, None] * theta        # (T, d/2)

        def rotate(t):
            a, b = t[..., :d // 2], t[..., d // 2:]
            return torch.cat([a * angle.cos() - b * angle.sin(), a * angle.sin() + b * angle.cos()], -1)
        q, k = rotate(q), rotate(k)
    logits = (q @ k.transpose(-1, -2)) / math.sqrt(d) if content else torch.zeros(B, H, T, T, dtype=x.dtype)
    if name == "t5":                                  # T5: no 1/sqrt(d) on the bias
        logits = logits + mixer.relative_attention_bias.weight[t5_bucket(r)].permute(2, 0, 1)
    if name == "alibi":                               # slopes 2^(-8h/H), h = 1..H
        slopes = torch.tensor([2.0 ** (-8 * h / H) for h in range(1, H + 1)], dtype=x.dtype)
        logits = logits - slopes[:, None, None] * r.abs()
    if name == "kerple":
        r1, r2 = mixer.r1.clamp(min=0.01), mixer.r2.clamp(min=0.01)
        logits = logits - r1[:, None, None] * torch.log1p(r2[:, None, None] * r.abs())
    if name.startswith("composite") or name == "shaw":
        ell = mixer.max_rel
        c = r.clamp(-ell, ell) + ell                 # clip(j - i) + ℓ; its transpose: clip(i - j) + ℓ
        rows, cols = torch.arange(T)[:, None], torch.arange(T)[None, :]
        if name == "shaw":
            logits = logits + (q @ mixer.relative_keys.T)[:, :, rows, c] / math.sqrt(d)
        if getattr(mixer, "fixed_kernel", None) is not None:
            logits = logits + mixer.fixed_kernel[:, c]
        if getattr(mixer, "query_kernel", None) is not None:
            logits = logits + (q @ mixer.query_kernel)[:, :, rows, c] / math.sqrt(d)
        if getattr(mixer, "key_kernel", None) is not None:
            logits = logits + (k @ mixer.key_kernel)[:, :, cols, c.T] / math.sqrt(d)
        if getattr(mixer, "outside", "clip") == "mask":
            logits = logits.masked_fill(r.abs() > ell, float("-inf"))
    A = torch.softmax(logits.masked_fill(~mask[:, None, None, :], float("-inf")), -1)
    return A.masked_fill(~real, 0.0), v


FORMULA_CASES = [(n, {}) for n in VARIANTS if n not in NO_MATRIX] + [
    ("composite", {"outside": "mask"}), ("composite", {"content": False}),
    ("alibi", {"content": False}), ("t5", {"content": False}), ("none", {"content": False})]


@pytest.mark.parametrize("name, opts", FORMULA_CASES,
                         ids=[n + "".join(f"-{k}={v}" for k, v in o.items()) for n, o in FORMULA_CASES])
def test_forward_and_mixing_matrix_follow_the_formula(name, opts):
    """The mixing matrix and the output, against the variant's equation written out from its
    parameters (default options: T5 with its bias unscaled and the content term scaled by
    1/sqrt(d_h)); padded rows of x hold NaN and inf."""
    if "max_rel" in compattn.options(name):       # a window narrower than the sequence
        opts = {"max_rel": 3, **opts}
    mixer = make(name, dtype=torch.float64, **opts)
    x = inputs(dtype=torch.float64)
    mask = torch.ones(2, 11, dtype=torch.bool)
    mask[1, 8:] = False
    x[~mask] = torch.tensor([float("nan"), float("inf"), -float("inf")]).repeat(11)[:32].double()
    A, v = formula(mixer, x, mask)
    assert_close(mixer.mixing_matrix(x, mask), A)
    heads = (A @ v).permute(0, 2, 1, 3).reshape(2, 11, -1)
    assert_close(mixer(x, mask), linear(heads, mixer.out))


@pytest.mark.parametrize("name", [n for n in VARIANTS if n not in NO_MATRIX])
def test_rows_lose_weight_only_where_declared(name):
    mixer = make(name, max_rel=3) if "max_rel" in compattn.options(name) else make(name)
    x = inputs()
    mask = torch.ones(2, 11, dtype=torch.bool)
    mask[1, 8:] = False
    rows = mixer.mixing_matrix(x, mask).sum(-1)
    if compattn.entry(name).rows_sum_to_one:     # a softmax over the sequence
        assert_close(rows[0], torch.ones_like(rows[0]))
        assert_close(rows[1, :, :8], torch.ones_like(rows[1, :, :8]))
        return
    # a zero-padded convolution loses taps at the edges only (attention heads lose none)
    rows, ell = rows[0], mixer.max_rel               # sequence 0 has no padding: (H, T)
    assert (rows <= 1 + 1e-5).all()
    assert_close(rows[:, ell:11 - ell], torch.ones_like(rows[:, ell:11 - ell]))
    assert (rows[:, 0] < 1 - 1e-3).any()


def test_shaw_relative_values_follow_the_formula():
    """y_i = sum_j alpha_ij (v_j + a^V_clip(j-i)), on the plain path through ``attend``."""
    ell = 2
    mixer = make("shaw", dtype=torch.float64, max_rel=ell, relative_values=True)
    x = inputs(dtype=torch.float64)
    mask = torch.ones(2, 11, dtype=torch.bool)
    mask[1, 8:] = False
    A, v = formula(mixer, x, mask)
    r = torch.arange(11)[None, :] - torch.arange(11)[:, None]
    a_v = mixer.relative_values[r.clamp(-ell, ell) + ell]              # (T, T, d): small here
    heads = A @ v + torch.einsum("bhij,ijd->bhid", A, a_v)
    assert_close(mixer(x, mask), linear(heads.permute(0, 2, 1, 3).reshape(2, 11, -1), mixer.out))


def test_convbert_projects_its_queries_once():
    mixer = make("convbert")
    calls = []
    mixer.query.register_forward_hook(lambda *args: calls.append(1))
    mixer(inputs())
    assert len(calls) == 1


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
