"""The identities of Part I, asserted with SymPy (the chapters assert the same ones)."""
import sympy as sp
import torch
from torch.testing import assert_close

import compattn
from compattn import symbolic as S


def test_the_window_and_the_keys_never_print_alike():
    """The window is the book's \\ell (the papers' k); k stays the keys' letter."""
    assert sp.latex(S.ell_) == r"\ell" and S.ell_ == S.ell_sym
    assert "ell" in str(S.EXTRA_PARAMETERS["composite"]) and sp.Symbol("k") not in \
        S.EXTRA_PARAMETERS["composite"].free_symbols
    keys = S.sequence("k", 3, 2)
    assert all(sp.latex(s).startswith("k_{") for s in keys)
    assert S.ell_ not in set(keys)


def test_convolution_is_a_band_matrix_product():
    T, k = 5, 1
    X = S.sequence("x", T, 2)
    w = S.offset_symbols("w", k)
    assert S.is_zero(S.band_matrix(T, w, k) * X - S.depthwise_convolution(X, [w, w], k))


def test_lightweight_convolution_ties_channels_within_a_head():
    T, k = 4, 1
    X = S.sequence("x", T, 2)
    w = S.offset_symbols("w", k)
    band = S.band_matrix(T, S.softmax_kernel(w), k)
    assert S.is_zero(band * X - S.lightweight_convolution(X, [w], k))


def test_dynamic_convolution_rows_depend_on_their_own_token():
    T, k = 4, 1
    X = S.sequence("x", T, 2)
    W = S.sequence("W", 2, 2 * k + 1)          # generator: logits for the 3 taps from x_i
    kernel = lambda i: S.softmax_kernel({r: (X[i, :] * W[:, r + k])[0] for r in range(-k, k + 1)})
    A = S.band_matrix(T, kernel, k)
    for i in range(T):
        others = {s for j in range(T) if j != i for s in X[j, :]}
        assert not (A[i, :].free_symbols & others)


def test_shaw_logits_are_content_plus_a_query_generated_kernel():
    T, d, k = 4, 2, 1
    Q, K = S.sequence("q", T, d), S.sequence("k", T, d)
    a = S.offset_vectors("a", k, d)
    shaw = sp.Matrix(T, T, lambda i, j: (Q[i, :] * (K[j, :] + a[S.clip(j - i, k)]).T)[0])
    assert S.is_zero(shaw - (S.content_scores(Q, K) + S.query_relative_term(Q, a, k)))


def test_joint_softmax_multiplies_the_kernels():
    T, k = 4, 1
    c = sp.Matrix(T, T, lambda i, j: sp.Symbol(f"c_{{{i}{j}}}", real=True))
    beta = S.fixed_relative_term(T, S.offset_symbols("beta", k), k)
    product = S.normalise_rows(c.applyfunc(sp.exp).multiply_elementwise(beta.applyfunc(sp.exp)))
    assert S.is_zero(S.softmax_rows(c + beta) - product)


def test_rotary_score_depends_only_on_the_offset():
    m, n, theta = sp.symbols("m n theta", real=True)
    q, k = S.sequence("q", 2, 1), S.sequence("k", 2, 1)
    assert S.is_zero(S.rotary_score(q, k, m, n, theta) - S.rotary_score(q, k, 0, n - m, theta))


def test_quadratic_encoding_concentrates_on_the_shift():
    alpha = sp.Symbol("alpha", positive=True)
    shift = 1
    scores = {d: S.quadratic_score(d, shift, alpha) for d in (-1, 0, 1)}
    weight = sp.exp(scores[shift]) / sum(sp.exp(s) for s in scores.values())
    assert sp.limit(weight, alpha, sp.oo) == 1


def test_parameter_counts_match_the_library():
    for d_model, n_heads, k in ((64, 4, 3), (256, 4, 8), (96, 6, 5)):   # instances of H, d_h, k
        base = compattn.mixer_parameter_count("none", d_model, n_heads)
        for name, expr in S.EXTRA_PARAMETERS.items():
            got = compattn.mixer_parameter_count(name, d_model, n_heads, max_rel=k) - base
            assert got == expr.subs({S.H: n_heads, S.d_h: d_model // n_heads, S.ell_sym: k})


def test_symbolic_lightconv_equals_the_library_numerically():
    T, k = 6, 2
    torch.manual_seed(0)
    mixer = compattn.build("lightconv", 4, 2, 16, max_rel=k, glu=False).double()
    v = torch.randn(1, T, 4, dtype=torch.float64)
    X = sp.Matrix(v[0].tolist())
    w = [{r: float(mixer.weight[h, r + k].detach()) for r in range(-k, k + 1)} for h in range(2)]
    expected = torch.tensor(S.lightweight_convolution(X, w, k).evalf().tolist(), dtype=torch.float64)
    with torch.no_grad():
        mixer.value.weight.copy_(torch.eye(4))
        mixer.value.bias.zero_()
        mixer.out.weight.copy_(torch.eye(4))
        mixer.out.bias.zero_()
    assert_close(mixer(v)[0], expected)


def test_key_based_term_is_the_reversed_table_read_at_j_minus_i():
    T, k = 4, 1
    K = S.sequence("k", T, 2)
    u = S.offset_vectors("u", k, 2)
    reversed_u = {r: u[-r] for r in u}
    as_j_minus_i = sp.Matrix(T, T, lambda i, j: (K[j, :] * reversed_u[S.clip(j - i, k)].T)[0])
    assert S.is_zero(S.key_relative_term(K, u, k) - as_j_minus_i)


def test_clipped_kernel_without_content_has_tied_tails_and_becomes_wu_at_minus_infinity():
    T, k = 5, 1
    Q = S.sequence("q", T, 2)
    a = S.offset_vectors("a", k, 2)
    A = S.softmax_rows(S.query_relative_term(Q, a, k))
    assert S.is_zero(A[2, 0] - A[2, 1]) and S.is_zero(A[2, 4] - A[2, 3])
    edge_logits = [(Q[2, :] * a[r].T)[0] for r in (-k, k)]
    row = A[2, :].subs({sp.exp(e): 0 for e in edge_logits})
    assert S.is_zero(row - sp.Matrix([[0, 0, 1, 0, 0]]))


def test_deberta_terms_are_query_and_key_based_kernels():
    T, k = 4, 1
    Q, K = S.sequence("q", T, 2), S.sequence("k", T, 2)
    Kr, Qr = S.offset_vectors("K^r", k, 2), S.offset_vectors("Q^r", k, 2)
    c2p = sp.Matrix(T, T, lambda i, j: (Q[i, :] * Kr[S.clip(i - j, k)].T)[0])
    p2c = sp.Matrix(T, T, lambda i, j: (K[j, :] * Qr[S.clip(i - j, k)].T)[0])
    assert S.is_zero(c2p - S.query_relative_term(Q, {r: Kr[-r] for r in Kr}, k))
    assert S.is_zero(p2c - S.key_relative_term(K, Qr, k))


def test_convbert_kernel_at_query_vs_authors_kernel_at_key():
    T, k = 5, 1
    width = 2 * k + 1
    G = sp.Matrix(T, width, lambda i, c: sp.Symbol(f"G_{i}_{c}", real=True))
    convbert = S.band_matrix(T, lambda i: S.softmax_kernel({r: G[i, r + k] for r in range(-k, k + 1)}), k)
    authors = S.softmax_rows(sp.Matrix(T, T, lambda i, j: G[j, j - i + k] if abs(j - i) <= k else -sp.oo))
    S.counterexample(convbert[2, 1] - authors[2, 1])           # differ: one point shows it
    same = {G[i, c]: G[0, c] for i in range(T) for c in range(width)}
    assert S.is_zero((convbert - authors).subs(same)[k:T - k, :])
    S.counterexample(sum(convbert[0, :]).subs(same) - 1)       # zero padding loses a tap
    assert S.is_zero(sum(authors[0, :]).subs(same) - 1)        # the authors renormalise
