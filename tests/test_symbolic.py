"""The identities of Part I, asserted with SymPy (the chapters assert the same ones), and the
checks that the symbolic builders are the library's formulas."""
import pytest
import sympy as sp
import torch
from torch.testing import assert_close

import compattn
from compattn import symbolic as S
from compattn.positions import alibi_slopes


def test_the_window_and_the_keys_never_print_alike():
    """The window is the book's \\ell (the papers' k); k stays the keys' letter."""
    assert sp.latex(S.ell_) == r"\ell" and S.ell_ == S.ell_sym
    assert "ell" in str(S.EXTRA_PARAMETERS["composite"]) and sp.Symbol("k") not in \
        S.EXTRA_PARAMETERS["composite"].free_symbols
    keys = S.sequence("k", 3, 2)
    assert all(sp.latex(s).startswith("k_{") for s in keys)
    assert S.ell_ not in set(keys)


# --- counterexample: one exact point, clearly away from zero -----------------------------------
def test_counterexample_demands_a_clear_non_zero_value():
    x, y = sp.symbols("x y", real=True)
    values, value = S.counterexample(x - y)
    assert all(isinstance(v, sp.Rational) for v in values.values()) and abs(value) > 1e-3
    S.counterexample(sp.Matrix([[x, -x]]))           # entries that cancel in a sum still count
    refused = [
        x - x,                                          # zero
        sp.Matrix([[x - x, 0]]),                        # a matrix of zeros
        sp.exp(x) * sp.exp(y) - sp.exp(x + y),          # zero after simplification
        sp.log(2 * x + 2) - sp.log(x + 1) - sp.log(2),  # zero that evalf cannot resolve
        x / 10 ** 5,                                    # non-zero, but within the margin
    ]
    for expr in refused:
        with pytest.raises(AssertionError, match="no counterexample"):
            S.counterexample(expr)
    S.counterexample(x / 10 ** 5, margin=sp.Rational(1, 10 ** 6))     # the margin is stated
    with pytest.raises(ValueError, match="exact"):
        S.counterexample(sp.Float(1e-125) * x)          # floats are refused ...
    with pytest.raises(ValueError, match="exact"):
        S.counterexample(x, values={x: 0.5})            # ... in the values too


# --- convolutions ---------------------------------------------------------------------------------
def test_convolution_is_a_band_matrix_product():
    T, ell = 5, 1
    X = S.sequence("x", T, 2)
    w = S.offset_symbols("w", ell)
    assert S.is_zero(S.band_matrix(T, w, ell) * X - S.depthwise_convolution(X, [w, w], ell))


def test_lightweight_convolution_ties_channels_within_a_head():
    T, ell = 4, 1
    X = S.sequence("x", T, 2)
    w = S.offset_symbols("w", ell)
    band = S.band_matrix(T, S.softmax_kernel(w), ell)
    assert S.is_zero(band * X - S.lightweight_convolution(X, [w], ell))


def test_dynamic_convolution_rows_depend_on_their_own_token():
    T, ell = 4, 1
    X = S.sequence("x", T, 2)
    W = S.sequence("W", 2, 2 * ell + 1)        # generator: logits for the 3 taps from x_i
    kernel = lambda i: S.softmax_kernel({r: (X[i, :] * W[:, r + ell])[0]
                                         for r in range(-ell, ell + 1)})
    A = S.band_matrix(T, kernel, ell)
    for i in range(T):
        others = {s for j in range(T) if j != i for s in X[j, :]}
        assert not (A[i, :].free_symbols & others)


def test_symbolic_lightconv_equals_the_library_numerically():
    T, ell = 6, 2
    torch.manual_seed(0)
    mixer = compattn.build("lightconv", 4, 2, 16, max_rel=ell, glu=False).double()
    v = torch.randn(1, T, 4, dtype=torch.float64)
    X = sp.Matrix(v[0].tolist())
    w = [{r: float(mixer.weight[h, r + ell].detach()) for r in range(-ell, ell + 1)}
         for h in range(2)]
    expected = torch.tensor(S.lightweight_convolution(X, w, ell).evalf().tolist(),
                            dtype=torch.float64)
    with torch.no_grad():
        mixer.value.weight.copy_(torch.eye(4))
        mixer.value.bias.zero_()
        mixer.out.weight.copy_(torch.eye(4))
        mixer.out.bias.zero_()
    assert_close(mixer(v)[0], expected)


# --- relative positions ---------------------------------------------------------------------------
def test_shaw_logits_are_content_plus_a_query_generated_kernel():
    T, d, ell = 4, 2, 1
    Q, K = S.sequence("q", T, d), S.sequence("k", T, d)
    a = S.offset_vectors("a", ell, d)
    shaw = sp.Matrix(T, T, lambda i, j: (Q[i, :] * (K[j, :] + a[S.clip(j - i, ell)]).T)[0])
    assert S.is_zero(shaw - (S.content_scores(Q, K) + S.query_relative_term(Q, a, ell)))


def test_joint_softmax_multiplies_the_kernels():
    T, ell = 4, 1
    eta = sp.Matrix(T, T, lambda i, j: sp.Symbol(f"eta_{{{i}{j}}}", real=True))
    beta = S.fixed_relative_term(T, S.offset_symbols("beta", ell), ell)
    product = S.normalise_rows(eta.applyfunc(sp.exp).multiply_elementwise(beta.applyfunc(sp.exp)))
    assert S.is_zero(S.softmax_rows(eta + beta) - product)


def test_key_based_term_is_the_reversed_table_read_at_j_minus_i():
    T, ell = 4, 1
    K = S.sequence("k", T, 2)
    u = S.offset_vectors("u", ell, 2)
    reversed_u = {r: u[-r] for r in u}
    as_j_minus_i = sp.Matrix(T, T, lambda i, j: (K[j, :] * reversed_u[S.clip(j - i, ell)].T)[0])
    assert S.is_zero(S.key_relative_term(K, u, ell) - as_j_minus_i)


def test_symbolic_composite_terms_are_the_librarys():
    """The three builders, evaluated at a library layer's weights, give its mixing matrix:
    a sign or an index wrong on either side fails here."""
    torch.manual_seed(0)
    T, D, H, ell = 5, 4, 2, 1
    mixer = compattn.build("composite", D, H, 16, content=False, max_rel=ell).double()
    with torch.no_grad():
        mixer.fixed_kernel.normal_()
    x = torch.randn(1, T, D, dtype=torch.float64)
    d_h = D // H
    heads = lambda linear: (x[0] @ linear.weight.T + linear.bias).view(T, H, d_h)
    q, k = heads(mixer.query).detach(), heads(mixer.key).detach()
    table = lambda t: {r: sp.Matrix([t[:, r + ell].tolist()]) for r in range(-ell, ell + 1)}
    scale = 1 / sp.sqrt(d_h)
    for h in range(H):
        Q, K = sp.Matrix(q[:, h].tolist()), sp.Matrix(k[:, h].tolist())
        beta = {r: float(mixer.fixed_kernel[h, r + ell].detach()) for r in range(-ell, ell + 1)}
        logits = (S.fixed_relative_term(T, beta, ell)
                  + S.query_relative_term(Q, table(mixer.query_kernel.detach()), ell, scale)
                  + S.key_relative_term(K, table(mixer.key_kernel.detach()), ell, scale))
        expected = torch.softmax(torch.tensor(logits.evalf().tolist(), dtype=torch.float64), -1)
        assert_close(mixer.mixing_matrix(x)[0, h], expected)


def test_clipped_kernel_without_content_has_tied_tails_and_becomes_wu_at_minus_infinity():
    T, ell = 5, 1
    Q = S.sequence("q", T, 2)
    a = S.offset_vectors("a", ell, 2)
    A = S.softmax_rows(S.query_relative_term(Q, a, ell))
    assert S.is_zero(A[2, 0] - A[2, 1]) and S.is_zero(A[2, 4] - A[2, 3])
    edge_logits = [(Q[2, :] * a[r].T)[0] for r in (-ell, ell)]
    row = A[2, :].subs({sp.exp(e): 0 for e in edge_logits})
    assert S.is_zero(row - sp.Matrix([[0, 0, 1, 0, 0]]))


def test_deberta_terms_are_query_and_key_based_kernels():
    T, ell = 4, 1
    Q, K = S.sequence("q", T, 2), S.sequence("k", T, 2)
    Kr, Qr = S.offset_vectors("K^r", ell, 2), S.offset_vectors("Q^r", ell, 2)
    c2p = sp.Matrix(T, T, lambda i, j: (Q[i, :] * Kr[S.clip(i - j, ell)].T)[0])
    p2c = sp.Matrix(T, T, lambda i, j: (K[j, :] * Qr[S.clip(i - j, ell)].T)[0])
    assert S.is_zero(c2p - S.query_relative_term(Q, {r: Kr[-r] for r in Kr}, ell))
    assert S.is_zero(p2c - S.key_relative_term(K, Qr, ell))


# --- other schemes --------------------------------------------------------------------------------
def test_rotary_score_depends_only_on_the_offset():
    m, n, theta = sp.symbols("m n theta", real=True)
    q, k = S.sequence("q", 2, 1), S.sequence("k", 2, 1)
    assert S.is_zero(S.rotary_score(q, k, m, n, theta) - S.rotary_score(q, k, 0, n - m, theta))


@pytest.mark.parametrize("shift", [-1, 0, 1])
def test_quadratic_encoding_concentrates_on_the_shift(shift):
    gamma = sp.Symbol("gamma", positive=True)
    scores = {r: S.quadratic_score(r, shift, gamma) for r in (-1, 0, 1)}
    weight = sp.exp(scores[shift]) / sum(sp.exp(s) for s in scores.values())
    assert sp.limit(weight, gamma, sp.oo) == 1


def test_alibi_slopes_follow_the_stated_rule():
    for n_heads in range(1, 17):
        exact = S.alibi_slopes_exact(n_heads)
        assert_close(alibi_slopes(n_heads).double(),
                     torch.tensor([float(m) for m in exact], dtype=torch.float64))
    assert S.alibi_slopes_exact(8) == [sp.Rational(1, 2 ** h) for h in range(1, 9)]
    with pytest.raises(ValueError, match="positive int"):
        S.alibi_slopes_exact(0)


def test_parameter_counts_match_the_library():
    for d_model, n_heads, ell in ((64, 4, 3), (256, 4, 8), (96, 6, 5)):   # instances of H, d_h, ℓ
        base = compattn.mixer_parameter_count("none", d_model, n_heads)
        for name, expr in S.EXTRA_PARAMETERS.items():
            got = compattn.mixer_parameter_count(name, d_model, n_heads, max_rel=ell) - base
            assert got == expr.subs({S.H: n_heads, S.d_h: d_model // n_heads, S.ell_sym: ell})


# --- ConvBERT: the kernel at the query (ConvBERT) or at the key (the authors' code) -----------
def convbert_and_authors(T=5, ell=1):
    width = 2 * ell + 1
    G = sp.Matrix(T, width, lambda i, c: sp.Symbol(f"G_{i}_{c}", real=True))
    convbert = S.band_matrix(T, lambda i: S.softmax_kernel(
        {r: G[i, r + ell] for r in range(-ell, ell + 1)}), ell)
    authors = S.softmax_rows(sp.Matrix(
        T, T, lambda i, j: G[j, j - i + ell] if abs(j - i) <= ell else -sp.oo))
    same = {G[i, c]: G[0, c] for i in range(T) for c in range(width)}
    return G, convbert, authors, same


def test_convbert_kernel_at_query_vs_authors_kernel_at_key():
    T, ell = 5, 1
    G, convbert, authors, same = convbert_and_authors(T, ell)
    S.counterexample(convbert[2, 1] - authors[2, 1])           # differ: one point shows it
    assert S.is_zero((convbert - authors).subs(same)[ell:T - ell, :])


def test_convbert_edge_rows_lose_weight_where_the_authors_renormalise():
    """For a position-invariant kernel, on every edge row and for every real G: the authors'
    row sums to exactly 1, ConvBERT's zero-padded row to strictly less, so the rows differ."""
    T, ell = 5, 1
    G, convbert, authors, same = convbert_and_authors(T, ell)
    for i in (*range(ell), *range(T - ell, T)):
        assert S.is_zero(sum(authors[i, :]).subs(same) - 1)
        lost = sp.simplify(1 - sum(convbert[i, :]).subs(same))
        assert lost.is_positive, lost
