"""Part I (chapters 1-6): the general proofs, the instance checks and the answers to the
exercises that the chapters do not print.  A change to ``compattn.symbolic`` or to a
mixer that breaks a statement of Part I fails here first."""
import math

import pytest
import sympy as sp
import torch
from torch.testing import assert_close

import compattn
from compattn import symbolic as S
from compattn.positions import alibi_slopes, t5_bucket


# --- general proofs (symbolic T, ℓ, d_h) ---------------------------------------------------------
@pytest.mark.parametrize("dynamic", [False, True])
def test_band_form_of_a_convolution_for_every_T_and_ell(dynamic):
    entry, summand = S.prove_band_form(dynamic)
    assert entry.has(sp.Piecewise) and summand.has(sp.Piecewise)


def test_clip_cases_for_every_ell():
    cases = S.prove_clip()
    assert cases["left"] == -S.ell_ and cases["right"] == S.ell_


def test_step1_split_for_every_d_h_reads_the_table_at_the_offset():
    logit, content, kernel = S.prove_relative_key_split()
    a = sp.IndexedBase("a")
    assert S.table_index(kernel, a) == S.clip_expr(S.j_ - S.i_, S.ell_)
    # the check behind it: an absolute index, or the reversed offset, is refused
    for wrong in (S.clip_expr(S.j_, S.ell_), S.clip_expr(S.i_ - S.j_, S.ell_), S.ell_):
        with pytest.raises(AssertionError):
            S.assert_reads_offset(wrong)


def test_step2_joint_softmax_for_every_T():
    soft, product = S.prove_joint_softmax()
    assert soft.has(sp.Sum) and product.has(sp.Sum)


def test_step3_interior_rows_are_wu_and_no_other_row_is():
    row_sum, wu = S.prove_interior_rows_are_wu()
    assert wu.limits[0][1:] == (1 - S.ell_, S.ell_ - 1)           # 2ℓ - 1 taps
    assert set(S.row_cases()) == {"interior", "left short", "right short",
                                  "both short, i <= T-1-i", "both short, i > T-1-i"}


def test_step3_refuses_a_row_that_is_not_interior():
    """The interior split needs i >= ℓ-1 and T-1-i >= ℓ-1; a row one step further out must
    fail, and not pass through a reversed (Karr) range or a summation index assumed >= 0."""
    n1, n2 = sp.symbols("n_1 n_2", integer=True, nonnegative=True)
    ell = S.ell_
    for i, after in ((ell - 2 + n1, ell - 1 + n2), (ell - 1 + n1, ell - 2 + n2)):
        case = {"i": i, "after": after, "ell": ell, "row cuts": [1 - ell, ell],
                "window cuts": []}
        with pytest.raises(AssertionError, match="proper range"):
            S._row_pieces(case)


def test_composite_and_transformer_xl_decompositions_for_every_d_h():
    terms = S.prove_composite_split()
    assert set(terms) == {"content", "fixed", "query", "key"}
    assert S.table_index(terms["key"], sp.IndexedBase("u'")) == S.clip_expr(S.i_ - S.j_, S.ell_)
    txl = S.prove_transformer_xl_terms()
    assert "per-key bias" in txl
    assert all(t.has(1 / sp.sqrt(S.d_h)) for t in txl.values())     # scaled by 1/sqrt(d_h)


@pytest.mark.parametrize("bias", [S.t5_like, S.alibi_bias, S.kerple_log_bias])
def test_fixed_schemes_are_fixed_kernels(bias):
    S.prove_fixed_kernel(bias)


@pytest.mark.parametrize("bias", [S.alibi_bias, S.kerple_log_bias], ids=["alibi", "kerple"])
def test_distance_penalties_decay_with_distance(bias):
    assert S.prove_decays_with_distance(bias).is_negative
    flipped = lambda i, j: -bias(i, j)
    with pytest.raises(AssertionError, match="does not fall"):
        S.prove_decays_with_distance(flipped)


def test_kerple_is_not_alibi():
    # counterexample: rho1 = rho2 = 1 at |r| = 1 and 2: log 3 / log 2 != 2 (ALiBi's ratio)
    r = sp.Symbol("r", integer=True)
    kerple = S.kerple_log_bias(0, r).subs({sp.Symbol("rho_1", positive=True): 1,
                                           sp.Symbol("rho_2", positive=True): 1})
    S.counterexample(kerple.subs(r, 2) / kerple.subs(r, 1) - 2)


def bias_matrix(bias, T, parameters: dict):
    """(T, T) float64 tensor of a symbolic bias at numeric parameters {symbol: value}."""
    i, j = sp.symbols("i j", integer=True)
    f = sp.lambdify((i, j), bias(i, j).subs(parameters), "math")
    return torch.tensor([[f(a, b) for b in range(T)] for a in range(T)], dtype=torch.float64)


def test_alibi_bias_is_the_librarys():
    T, H = 9, 4
    mixer = compattn.build("alibi", 8, H, 32, content=False).double()
    A = mixer.mixing_matrix(torch.randn(1, T, 8, dtype=torch.float64))[0]
    m = sp.Symbol("m", positive=True)
    for h, slope in enumerate(S.alibi_slopes_exact(H)):
        assert_close(A[h], torch.softmax(bias_matrix(S.alibi_bias, T, {m: slope}), -1))


def test_kerple_bias_is_the_librarys():
    T, H = 9, 2
    mixer = compattn.build("kerple", 8, H, 32, content=False).double()
    rho = [(sp.Rational(3, 2), sp.Rational(4, 5)), (sp.Rational(1, 2), sp.Rational(3, 1))]
    tables = compattn.entry("kerple").tables            # declared, so no names are guessed
    r1 = compattn.registry.table(mixer, tables["kerple_r1"])
    r2 = compattn.registry.table(mixer, tables["kerple_r2"])
    with torch.no_grad():
        for h, (rho1, rho2) in enumerate(rho):
            r1[h], r2[h] = float(rho1), float(rho2)
    A = mixer.mixing_matrix(torch.randn(1, T, 8, dtype=torch.float64))[0]
    for h, (rho1, rho2) in enumerate(rho):
        parameters = {sp.Symbol("rho_1", positive=True): rho1,
                      sp.Symbol("rho_2", positive=True): rho2}
        expected = torch.softmax(bias_matrix(S.kerple_log_bias, T, parameters), -1)
        assert_close(A[h], expected)


# --- chapter 3, step 3 at ℓ = 2, T = 7, value by value -------------------------------------------
def step3_instance(T=7, ell=2):
    Q, a = S.sequence("q", T, 2), S.offset_vectors("a", ell, 2)
    term = S.query_relative_term(Q, a, ell)
    A = S.softmax_rows(term)
    edge = {sp.exp((Q[i, :] * a[r].T)[0]): 0 for i in range(T) for r in (-ell, ell)}
    cut = A.subs(edge)
    wu = S.band_matrix(T, lambda i: S.softmax_kernel(
        {r: (Q[i, :] * a[r].T)[0] for r in range(-ell + 1, ell)}), ell - 1)
    return Q, a, cut, wu


def test_step3_interior_rows_equal_wu_and_edge_rows_differ():
    T, ell = 7, 2
    Q, a, cut, wu = step3_instance(T, ell)
    for i in range(ell - 1, T - ell + 1):                  # rows 1 .. 5
        assert S.is_zero(cut[i, :] - wu[i, :])
    for i in (0, T - 1):                                   # rows 0 and 6: a counterexample
        S.counterexample(cut[i, :] - wu[i, :])
    assert sum(1 for e in cut[3, :] if not S.is_zero(e)) == 2 * ell - 1   # exercise 3.2


def test_composite_query_without_content_is_dynconv_renormalised():
    torch.manual_seed(0)
    D, H, ell, T = 8, 2, 2, 9
    comp = compattn.build("composite", D, H, 32, content=False, fixed=False, key=False,
                          query=True, max_rel=ell, outside="mask").double()
    dyn = compattn.build("dynconv", D, H, 32, max_rel=ell, glu=False).double()
    d_h = D // H
    with torch.no_grad():
        # dynconv predicts its kernel from the vectors it convolves (its value projection), so
        # the composite layer's values are made equal to its queries, and head h's generator
        # reads only head h's channels: logits_{h,r} = q_h . u_r * scale
        comp.query.bias.zero_()
        comp.value.load_state_dict(comp.query.state_dict())
        dyn.value.load_state_dict(comp.query.state_dict())
        G = torch.zeros(H, 2 * ell + 1, D, dtype=torch.float64)
        for h in range(H):
            G[h, :, h * d_h:(h + 1) * d_h] = comp.query_kernel.T * comp.scale
        dyn.kernel_generator.weight.copy_(G.reshape(H * (2 * ell + 1), D))
        dyn.out.load_state_dict(comp.out.state_dict())
    x = torch.randn(2, T, D, dtype=torch.float64)
    A_comp, A_dyn = comp.mixing_matrix(x), dyn.mixing_matrix(x)
    inner = slice(ell, T - ell)
    assert_close(A_comp[:, :, inner], A_dyn[:, :, inner])
    assert_close(comp(x)[:, inner], dyn(x)[:, inner])
    # edge rows: zero padding loses taps, the masked softmax renormalises what is left
    assert_close(A_comp, A_dyn / A_dyn.sum(-1, keepdim=True))
    assert (A_dyn.sum(-1)[:, :, 0] < 1 - 1e-6).all()


# --- chapter 6 -----------------------------------------------------------------------------------
def cordonnier_layer(ell=1, d_out=2, gamma=60.0, seed=0):
    """2ℓ+1 heads with d_h >= d_out expressing a conv of width 2ℓ+1, D -> d_out channels;
    head h's fixed kernel is Cordonnier et al.'s quadratic score for the shift h - ℓ."""
    torch.manual_seed(seed)
    H = 2 * ell + 1
    D = H * d_out                                   # d_h = d_out
    layer = compattn.build("composite_fixed", D, H, 32, content=False, max_rel=ell,
                           outside="mask").double()
    W = torch.randn(H, D, d_out, dtype=torch.float64)          # tap r = h - ℓ: D -> d_out
    r = torch.arange(-ell, ell + 1, dtype=torch.float64)
    with torch.no_grad():
        for h, shift in enumerate(range(-ell, ell + 1)):
            layer.fixed_kernel[h] = S.quadratic_score(r, shift, gamma)
        layer.value.weight.copy_(W.permute(0, 2, 1).reshape(D, D))   # head h: x W_h
        layer.value.bias.zero_()
        layer.out.weight.zero_()
        layer.out.bias.zero_()
        for h in range(H):                                          # sum the heads
            layer.out.weight[:d_out, h * d_out:(h + 1) * d_out] = torch.eye(d_out)
    return layer, W


def test_attention_expresses_a_convolution_output():
    ell, d_out, T = 1, 2, 8
    layer, W = cordonnier_layer(ell, d_out)
    x = torch.randn(1, T, layer.d_model, dtype=torch.float64)
    conv = torch.nn.functional.conv1d(x.transpose(1, 2), W.permute(2, 1, 0),
                                      padding=ell).transpose(1, 2)
    y = layer(x)[..., :d_out]
    assert_close(y[:, ell:T - ell], conv[:, ell:T - ell])
    assert (y[:, 0] - conv[:, 0]).abs().max() > 1e-3          # edge rows renormalise
    # the edge row copies the nearest position instead of a zero
    edge = x[:, 0] @ W[0] + x[:, 0] @ W[1] + x[:, 1] @ W[2]
    assert_close(y[:, 0], edge)


def test_deberta_hf_index_arithmetic():
    transformers = pytest.importorskip("transformers")
    from transformers.models.deberta_v2 import modeling_deberta_v2 as hf
    ell, T, d_h = 3, 9, 4
    config = transformers.DebertaV2Config(
        hidden_size=8, num_attention_heads=2, intermediate_size=16, relative_attention=True,
        max_relative_positions=ell, position_buckets=-1, pos_att_type=["c2p", "p2c"],
        share_att_key=False, max_position_embeddings=32)
    att = hf.DisentangledSelfAttention(config).double().eval()
    q = torch.randn(2, T, d_h, dtype=torch.float64)       # (batch * heads, T, d_h)
    keys = torch.randn(2, T, d_h, dtype=torch.float64)
    P = torch.randn(2 * ell, 8, dtype=torch.float64)        # the relative table, 2ℓ rows
    rel = hf.build_relative_position(q, keys)
    ij = torch.arange(T)[:, None] - torch.arange(T)[None, :]
    assert (rel[0] == ij).all()                             # HF's relative_pos is i - j
    with torch.no_grad():
        score = att.disentangled_attention_bias(q, keys, None, P, scale_factor=3)
    Kr = att.transpose_for_scores(att.pos_key_proj(P[None]), 2)[:, :, :]
    Qr = att.transpose_for_scores(att.pos_query_proj(P[None]), 2)
    delta = ij.clamp(-ell, ell - 1) + ell                   # delta(i, j): 2ℓ buckets
    scale = math.sqrt(d_h * 3)
    c2p = torch.einsum("bid,bijd->bij", q, Kr[:, delta]) / scale
    p2c = torch.einsum("bjd,bijd->bij", keys, Qr[:, delta]) / scale
    assert_close(score, c2p + p2c)
    # the symmetric clip over 2ℓ+1 taps differs on the offset i - j = ell
    sym = ij.clamp(-ell, ell) + ell
    assert (sym != delta).any() and (sym[delta != sym] == 2 * ell).all()


def test_alibi_causal_forms_coincide():
    m, T = sp.Symbol("m", positive=True), 6
    causal = lambda bias: S.softmax_rows(sp.Matrix(
        T, T, lambda i, j: bias(i, j) if j <= i else -sp.oo))
    signed, absolute = causal(lambda i, j: m * (j - i)), causal(lambda i, j: -m * abs(j - i))
    assert signed == absolute                                # identical logits, not shifted
    by_key = causal(lambda i, j: m * j)                      # adds m j = m (j - i) + m i
    assert S.is_zero(by_key - signed)
    assert (sp.Matrix(T, T, lambda i, j: m * j - m * (j - i)) ==
            sp.Matrix(T, T, lambda i, j: m * i))


def test_t5_exercise_answer():
    rel = torch.arange(-127, 128)
    b = t5_bucket(rel)
    assert len(set(b.tolist())) == 31
    assert max((b == v).sum().item() for v in set(b.tolist())) == 37


def test_alibi_exercise_answer():
    wide = compattn.build("alibi", 32, 8, 2048, content=False)
    row = wide.mixing_matrix(torch.randn(1, 1025, 32))[0, -1, 512]
    assert row[504:521].sum() < 0.1 and torch.isclose(row.sum(), torch.tensor(1.0))
    assert alibi_slopes(8).min() == 2 ** -8


# --- chapters 1, 2, 4, 5: the exercise answers ---------------------------------------------------
def test_chapter1_permutation_and_shift_equivariance_and_row_constants():
    mixer = compattn.build("none", d_model=8, n_heads=2, max_len=16).double().eval()
    x = torch.randn(1, 6, 8, dtype=torch.float64)
    perm = torch.randperm(6)
    assert_close(mixer(x[:, perm]), mixer(x)[:, perm])
    # a cyclic shift is a permutation: the outputs shift with the inputs
    assert_close(mixer(torch.roll(x, 1, dims=1)), torch.roll(mixer(x), 1, dims=1))
    # a constant lambda_i per row (ex-mixing-scale) leaves every row unchanged
    T = 3
    scores = sp.Matrix(T, T, lambda i, j: sp.Symbol(f"s_{i}{j}", real=True))
    lam = [sp.Symbol(f"lambda_{i}", real=True) for i in range(T)]
    shifted = scores + sp.Matrix(T, T, lambda i, j: lam[i])
    assert S.is_zero(S.softmax_rows(shifted) - S.softmax_rows(scores))


def test_chapter1_ex_mixing_four_needs_a_head_as_wide_as_the_model():
    """W^Q (W^K)^T is D x D of rank at most d_h: it can be the identity only if d_h = D."""
    mixer = compattn.build("none", d_model=8, n_heads=2, max_len=16).double()
    d_h = 8 // 2
    for h in range(2):
        rows = slice(h * d_h, (h + 1) * d_h)          # head h's columns of W^Q, W^K
        product = mixer.query.weight[rows].T @ mixer.key.weight[rows]      # (D, D)
        assert torch.linalg.matrix_rank(product.detach()) <= d_h < 8


def test_chapter5_output_injection_runs_over_every_head():
    """conv_output adds a depthwise convolution of the values to *every* head's output
    (conv_qk and conv_values use half of the heads)."""
    torch.manual_seed(0)
    D, H = 8, 4
    injected = compattn.build("conv_output", D, H, 32, max_rel=1).double()
    plain = compattn.build("none", D, H, 32).double()
    plain.load_state_dict({n: p for n, p in injected.state_dict().items()
                           if n in plain.state_dict()})
    with torch.no_grad():
        for mixer in (injected, plain):             # W^O = identity: read the heads
            mixer.out.weight.copy_(torch.eye(D))
            mixer.out.bias.zero_()
    x = torch.randn(1, 7, D, dtype=torch.float64)
    added = (injected(x) - plain(x)).view(1, 7, H, D // H)
    assert (added.abs().amax(dim=(0, 1, 3)) > 1e-3).all()      # in every head


def test_chapter2_parameters_and_translation_equivariance():
    assert compattn.build("lightconv", 256, 4, max_rel=8).weight.numel() == 4 * 17
    light = compattn.build("lightconv", 8, 2, 32, max_rel=2, glu=False).double()
    x = torch.randn(1, 12, 8, dtype=torch.float64)
    y = light(x)
    assert_close(light(torch.roll(x, 1, dims=1))[:, 3:-2], y[:, 2:-3])


def test_chapter4_tied_tables_and_local_mask():
    torch.manual_seed(0)
    T, ell = 9, 2
    x = torch.randn(1, T, 8, dtype=torch.float64)
    r = (torch.arange(T)[None] - torch.arange(T)[:, None]).clamp(-ell, ell) + ell
    tied = compattn.build("composite", 8, 2, 32, fixed=False, max_rel=ell).double()
    with torch.no_grad():
        tied.key_kernel.copy_(tied.query_kernel.flip(-1))
    heads = lambda linear: linear(x).view(1, T, 2, 4).transpose(1, 2)
    q, k = heads(tied.query), heads(tied.key)
    a = tied.query_kernel                               # Huang et al.'s one table, at j - i
    huang = (q @ k.transpose(-1, -2) + torch.einsum("bhid,dij->bhij", q, a[:, r])
             + torch.einsum("bhjd,dij->bhij", k, a[:, r])) * tied.scale
    assert_close(tied.mixing_matrix(x), torch.softmax(huang, -1))
    local = compattn.build("composite", 8, 2, 32, max_rel=ell, outside="mask").double()
    far = (torch.arange(T)[None] - torch.arange(T)[:, None]).abs() > ell
    assert (local.mixing_matrix(x)[0][:, far] == 0).all()


def convbert_symbols(T=5, K=3):
    ell = K // 2
    x = [sp.Symbol(f"x_{i}", real=True) for i in range(T)]
    wq = sp.Symbol("w_q", real=True)
    wf = [sp.Symbol(f"f_{{{r}}}", real=True) for r in range(-ell, ell + 1)]
    dw = S.offset_symbols("d", ell)
    span_key = [sum(dw[r] * x[i + r] for r in range(-ell, ell + 1) if 0 <= i + r < T)
                for i in range(T)]
    logit = lambda i, r: wq * x[i] * span_key[i] * wf[r + ell]
    ours = S.band_matrix(T, lambda i: S.softmax_kernel(
        {r: logit(i, r) for r in range(-ell, ell + 1)}), ell)
    authors = S.softmax_rows(sp.Matrix(
        T, T, lambda i, j: logit(j, j - i) if abs(j - i) <= ell else -sp.oo))
    return x, ell, ours, authors


def test_chapter5_span_is_plus_minus_ell_and_tells_the_kernels_apart():
    x, ell, ours, authors = convbert_symbols()
    T = len(x)
    window = lambda i, w: {x[j] for j in range(max(0, i - w), min(T, i + w + 1))}
    assert all(ours[i, :].free_symbols & set(x) <= window(i, ell) for i in range(T))
    assert not all(authors[i, :].free_symbols & set(x) <= window(i, ell) for i in range(T))
    assert all(authors[i, :].free_symbols & set(x) <= window(i, 2 * ell) for i in range(T))


def test_chapter5_exercise_answers():
    saving = (compattn.mixer_parameter_count("convbert", 256, 4)
              - compattn.mixer_parameter_count("none", 256, 4))
    assert saving < 0
    T, K = 5, 3
    ell = K // 2
    G = sp.Matrix(T, K, lambda i, c: sp.Symbol(f"G_{{{i},{c - ell}}}", real=True))
    authors = S.softmax_rows(sp.Matrix(
        T, T, lambda i, j: G[j, j - i + ell] if abs(j - i) <= ell else -sp.oo))
    assert {s.name.split(",")[0] for s in authors[2, :].free_symbols} == {"G_{1", "G_{2", "G_{3"}


# --- the heat maps of Part I ---------------------------------------------------------------------
def test_heat_maps_have_colour_bars_axis_labels_and_shared_scales():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from compattn import plots

    rng = torch.Generator().manual_seed(0)
    weights = {name: torch.rand(5, 5, generator=rng) * scale
               for name, scale in (("a", 1.0), ("b", 0.3))}
    logits = {name: torch.randn(5, 5, generator=rng) for name in ("c", "d")}

    def panels(fig):
        return [ax for ax in fig.axes if ax.images]

    def bars(fig):
        return [ax for ax in fig.axes if ax.get_label() == "<colorbar>"]

    fig = plots.plot_matrices(weights, ncols=2)          # shared: one scale, one bar
    assert len(panels(fig)) == 2 and len(bars(fig)) == 1
    assert len({ax.images[0].get_clim() for ax in panels(fig)}) == 1
    assert panels(fig)[0].images[0].get_clim() == (0.0, pytest.approx(weights["a"].max().item()))
    for ax in panels(fig):
        assert (ax.get_xlabel(), ax.get_ylabel()) == ("key position j", "query position i")
    plt.close(fig)

    fig = plots.plot_matrices(weights, shared=False)     # a scale and a bar per panel
    assert len(bars(fig)) == 2 and len({ax.images[0].get_clim() for ax in panels(fig)}) == 2
    plt.close(fig)

    fig = plots.plot_matrices({**logits, **weights},      # groups: signed logits, weights
                              shared={"logit": ["c", "d"], "weight": ["a", "b"]})
    by_name = {ax.get_title(): ax.images[0] for ax in panels(fig)}
    low, high = by_name["c"].get_clim()
    assert low == -high and by_name["d"].get_clim() == (low, high)
    assert by_name["c"].get_cmap().name == plots.SIGNED_CMAP
    assert by_name["a"].get_clim()[0] == 0 and by_name["a"].get_clim() == by_name["b"].get_clim()
    assert sorted(bar.get_ylabel() for bar in bars(fig)) == ["logit", "weight"]
    plt.close(fig)

    with pytest.raises(ValueError, match="every panel"):
        plots.plot_matrices(weights, shared={"weight": ["a"]})
