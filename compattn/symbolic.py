"""SymPy builders for the derivation chapters (Part I).

Two kinds of objects.  The builders write the mixing matrix of each variant out entry by
entry for a small instance (T = 4 .. 7 tokens, d_h = 2 channels, ell = 1 or 2), which a
chapter can display and check with :func:`is_zero`.  The ``prove_*`` functions prove the
main identities for *symbolic* T, ell and d_h on symbolic indices i, j, r (``IndexedBase``,
``Sum``, ``KroneckerDelta``, ``Piecewise``); each asserts its steps and returns what it
compared.  ``tests/test_symbolic.py`` and ``tests/test_part_one.py`` run the same
checks, so a change here or in the library breaks pytest first.

The window (offsets per direction) is ``ell``, printed as the book's symbol; the papers call
it k, a letter the book keeps for the keys k_j (here ``key[j, c]`` or ``sequence("k", ...)``).
"""
from __future__ import annotations

import sympy as sp


# --- building blocks ---------------------------------------------------------------------------
def sequence(name: str, T: int, d: int) -> sp.Matrix:
    """A (T, d) matrix of symbols name_{i,c}, one row per position."""
    return sp.Matrix(T, d, lambda i, c: sp.Symbol(f"{name}_{{{i},{c}}}", real=True))


def vector(name: str, d: int) -> sp.Matrix:
    """A (1, d) row vector of symbols name_c."""
    return sp.Matrix(1, d, lambda _, c: sp.Symbol(f"{name}_{{{c}}}", real=True))


def offset_symbols(name: str, ell: int) -> dict:
    """Symbols name_r for the offsets r = -ell .. ell (a kernel, a bias table)."""
    return {r: sp.Symbol(f"{name}_{{{r}}}", real=True) for r in range(-ell, ell + 1)}


def offset_vectors(name: str, ell: int, d: int) -> dict:
    """Row vectors name_r (1, d) for r = -ell .. ell (relative embeddings)."""
    return {r: sp.Matrix(1, d, lambda _, c: sp.Symbol(f"{name}_{{{r},{c}}}", real=True))
            for r in range(-ell, ell + 1)}


def clip(r: int, ell: int) -> int:
    return max(-ell, min(ell, r))


def is_zero(expr) -> bool:
    """True when ``expr`` (a scalar or a matrix) simplifies to exactly zero."""
    if isinstance(expr, sp.MatrixBase):
        return all(sp.simplify(e) == 0 for e in expr)
    return sp.simplify(expr) == 0


def counterexample(expr, values: dict | None = None):
    """Prove ``expr != 0`` by substitution: give every free symbol a concrete number
    (``values`` first, then the rationals 1/3, 2/3, ... in name order) and return the
    substitution and the (non-zero) number it gives.  "simplify did not reach 0" is not a
    proof of inequality; one point where the expression is non-zero is."""
    values = dict(values or {})
    free = sorted(sp.sympify(sum(expr) if isinstance(expr, sp.MatrixBase) else expr).free_symbols
                  - set(values), key=str)
    for n, symbol in enumerate(free):
        values[symbol] = sp.Rational(n % 7 + 1, 3) * (-1) ** n
    value = expr.subs(values)
    number = sp.N(value.norm() if isinstance(value, sp.MatrixBase) else value)
    assert number != 0, f"no counterexample at {values}"
    return values, number


# --- attention ------------------------------------------------------------------------------------
def softmax_rows(scores: sp.Matrix) -> sp.Matrix:
    """Row-wise softmax: entry (i, j) = exp(s_ij) / sum_j' exp(s_ij')."""
    T, S = scores.shape
    out = sp.zeros(T, S)
    for i in range(T):
        total = sum(sp.exp(scores[i, j]) for j in range(S))
        for j in range(S):
            out[i, j] = sp.exp(scores[i, j]) / total
    return out


def normalise_rows(weights: sp.Matrix) -> sp.Matrix:
    """Divide every row by its sum."""
    T, S = weights.shape
    return sp.Matrix(T, S, lambda i, j: weights[i, j] / sum(weights[i, jj] for jj in range(S)))


def content_scores(Q: sp.Matrix, K: sp.Matrix, scale=1) -> sp.Matrix:
    """(T, T) logits q_i . k_j * scale."""
    return (Q * K.T) * scale


def mix(A: sp.Matrix, V: sp.Matrix) -> sp.Matrix:
    """y = A V: output row i is sum_j A_ij v_j (all channels share the weight A_ij)."""
    return A * V


# --- relative position terms, indexed by the offset r = j - i ----------------------------------
def fixed_relative_term(T: int, beta: dict, ell: int) -> sp.Matrix:
    """beta_clip(j-i): a per-offset scalar, the same for every query (a fixed kernel)."""
    return sp.Matrix(T, T, lambda i, j: beta[clip(j - i, ell)])


def query_relative_term(Q: sp.Matrix, a: dict, ell: int, scale=1) -> sp.Matrix:
    """q_i . a_clip(j-i): a kernel over offsets generated from the query (Shaw et al.)."""
    T = Q.shape[0]
    return sp.Matrix(T, T, lambda i, j: (Q[i, :] * a[clip(j - i, ell)].T)[0] * scale)


def key_relative_term(K: sp.Matrix, a: dict, ell: int, scale=1) -> sp.Matrix:
    """k_j . a'_clip(i-j): a kernel generated from the key, indexed by i - j."""
    T = K.shape[0]
    return sp.Matrix(T, T, lambda i, j: (K[j, :] * a[clip(i - j, ell)].T)[0] * scale)


# --- convolutions ---------------------------------------------------------------------------------
def band_matrix(T: int, kernel, ell: int) -> sp.Matrix:
    """(T, T) band: entry (i, j) = kernel(i)[j - i] for |j - i| <= ell, else 0.

    ``kernel`` is a dict offset -> weight (the same for every row: a Toeplitz matrix) or a
    function i -> dict (a row-varying, dynamic kernel).
    """
    row = kernel if callable(kernel) else (lambda i: kernel)
    return sp.Matrix(T, T, lambda i, j: row(i)[j - i] if abs(j - i) <= ell else 0)


def depthwise_convolution(X: sp.Matrix, W: list, ell: int) -> sp.Matrix:
    """Zero-padded depthwise convolution: y_ic = sum_r W[c][r] x_{i+r, c}.

    ``W[c]`` is a dict offset -> weight for channel c.
    """
    T, d = X.shape
    return sp.Matrix(T, d, lambda i, c: sum(W[c][r] * X[i + r, c]
                                            for r in range(-ell, ell + 1) if 0 <= i + r < T))


def softmax_kernel(w: dict) -> dict:
    """Softmax over the taps of a kernel (Wu et al.'s normalisation)."""
    total = sum(sp.exp(v) for v in w.values())
    return {r: sp.exp(v) / total for r, v in w.items()}


def lightweight_convolution(X: sp.Matrix, w_per_head: list, ell: int) -> sp.Matrix:
    """Wu et al.'s LightConv: one softmax kernel per head, tied across its channels.

    ``w_per_head[h]`` is a dict of logits; channels are split into equal contiguous heads.
    """
    T, d = X.shape
    H = len(w_per_head)
    kernels = [softmax_kernel(w) for w in w_per_head]
    return depthwise_convolution(X, [kernels[c * H // d] for c in range(d)], ell)


# --- rotary embeddings and Cordonnier et al.'s construction --------------------------------------
def rotation(angle) -> sp.Matrix:
    return sp.Matrix([[sp.cos(angle), -sp.sin(angle)], [sp.sin(angle), sp.cos(angle)]])


def rotary_score(q: sp.Matrix, k: sp.Matrix, i, j, theta) -> sp.Expr:
    """(R_{i theta} q) . (R_{j theta} k) for 2-d column vectors q, k at positions i, j."""
    return ((rotation(i * theta) * q).T * (rotation(j * theta) * k))[0]


def quadratic_score(r, shift, gamma) -> sp.Expr:
    """Cordonnier et al.'s relative score -gamma ((r - shift)^2 - shift^2) for one head
    (their alpha; gamma here, because alpha is the attention weight)."""
    return -gamma * ((r - shift) ** 2 - shift ** 2)


# --- parameter counts as expressions in H, d_h, ell ----------------------------------------------
H, d_h, ell_sym = sp.symbols("H d_h ell", positive=True, integer=True)

EXTRA_PARAMETERS = {
    "composite_fixed": H * (2 * ell_sym + 1),
    "composite_query": d_h * (2 * ell_sym + 1),
    "composite_key": d_h * (2 * ell_sym + 1),
    "composite": H * (2 * ell_sym + 1) + 2 * d_h * (2 * ell_sym + 1),
}


# --- general proofs: symbolic T, ell, d_h and symbolic indices ----------------------------------
# The builders above write matrices out for one small (T, ell); the functions below prove the
# same identities for every T, ell and d_h, on symbolic indices i, j, r.  The window is the
# symbol ell; the key vectors are the IndexedBase ``key`` (key[j, c] is channel c of k_j), so
# the two never print alike.  Each returns the
# SymPy expressions it compared, so a chapter can display them; each asserts on failure.
i_, j_, r_, c_ = sp.symbols("i j r c", integer=True)
T_ = sp.Symbol("T", integer=True, positive=True)
d_, ell_ = d_h, ell_sym         # the symbols of the parameter counts above, not twins
x_, w_ = sp.IndexedBase("x"), sp.IndexedBase("w")
beta_ = sp.Function("beta")


def clip_expr(r, ell):
    """clip(r) = max(-ell, min(ell, r)) as a SymPy expression (symbolic r and ell allowed)."""
    return sp.Max(-ell, sp.Min(ell, r))


def prove_band_form(dynamic: bool = False):
    """For every T, ell and row i: sum_j B_ij x_j is the zero-padded convolution.

    B_ij = sum_r w_r [j = i + r]; swapping the two finite sums, sum_j [j = i + r] x_j is
    x_{i+r} when 0 <= i + r <= T - 1 and 0 otherwise -- zero padding.  With
    ``dynamic=True`` the kernel is row-dependent, w_{i,r} (a dynamic convolution); the
    argument is the same.  Returns (entry of B, summand of B x after the swap).
    """
    weight = (lambda r: w_[i_, r]) if dynamic else (lambda r: w_[r])
    entry = sp.Sum(weight(r_) * sp.KroneckerDelta(j_, i_ + r_), (r_, -ell_, ell_)).doit()
    expected = sp.Piecewise((weight(j_ - i_), (j_ - i_ >= -ell_) & (j_ - i_ <= ell_)), (0, True))
    assert entry == expected or sp.simplify(entry - expected) == 0, entry
    summand = sp.Sum(weight(r_) * sp.KroneckerDelta(j_, i_ + r_) * x_[j_],
                     (j_, 0, T_ - 1)).doit()
    padded = sp.Piecewise((weight(r_) * x_[i_ + r_], (i_ + r_ >= 0) & (i_ + r_ <= T_ - 1)),
                          (0, True))
    assert sp.simplify(summand - padded) == 0, summand
    return entry, summand


def offset_cases():
    """A symbolic offset r in each of the three cases of clip, for a symbolic ell >= 1.

    With n_1, n_2, n_3, n_4 >= 0: r = -ell - n_1 (left of the window, r <= -ell),
    r = n_2 - n_3 with ell = n_2 + n_3 + n_4 + 1 (inside, |r| <= ell - 1), r = ell + n_1 (right
    of the window, r >= ell).  Every pair (r, ell) with ell >= 1 is one of these, so a
    statement checked on the three is proved.  (Letters n_*: a, b, p, q, s already mean
    something in the book.)
    """
    n1, n2, n3, n4 = sp.symbols("n_1 n_2 n_3 n_4", integer=True, nonnegative=True)
    ell_in = n2 + n3 + n4 + 1
    return {"left": (-ell_ - n1, ell_), "inside": (n2 - n3, ell_in), "right": (ell_ + n1, ell_)}


def prove_clip():
    """clip(r) is -ell, r, +ell on the three cases, and clip(-r) = -clip(r), for every ell."""
    cases = offset_cases()
    r, ell = cases["left"]
    assert clip_expr(r, ell) == -ell
    r, ell = cases["inside"]
    assert clip_expr(r, ell) == r
    r, ell = cases["right"]
    assert clip_expr(r, ell) == ell
    for r, ell in cases.values():
        assert sp.simplify(clip_expr(-r, ell) + clip_expr(r, ell)) == 0
    return {name: clip_expr(r, ell) for name, (r, ell) in cases.items()}


def shift_invariant(f):
    """True when f(i, j) is unchanged by (i, j) -> (i + s, j + s) for a symbolic s."""
    s = sp.Symbol("s", integer=True)
    return sp.simplify(f(i_ + s, j_ + s) - f(i_, j_)) == 0


def prove_relative_key_split():
    """Step 1 of the theorem for every d_h: q_i.(k_j + a_clip(j-i)) = q_i.k_j + q_i.a_clip(j-i).

    Returns (logit, content, kernel) as sums over the d_h channels.
    """
    q, kk, a = sp.IndexedBase("q"), sp.IndexedBase("key"), sp.IndexedBase("a")
    idx = clip_expr(j_ - i_, ell_)
    logit = sp.Sum(q[i_, c_] * (kk[j_, c_] + a[idx, c_]), (c_, 0, d_ - 1)) / sp.sqrt(d_)
    content = sp.Sum(q[i_, c_] * kk[j_, c_], (c_, 0, d_ - 1)) / sp.sqrt(d_)
    kernel = sp.Sum(q[i_, c_] * a[idx, c_], (c_, 0, d_ - 1)) / sp.sqrt(d_)
    assert sp.simplify(logit.expand() - content.expand() - kernel.expand()) == 0
    assert shift_invariant(lambda i, j: clip_expr(j - i, ell_))    # the kernel index is j - i
    return logit, content, kernel


def prove_joint_softmax():
    """Step 2 for every T: softmax_j(c_ij + b(j-i)) = e^c e^b / sum_j' e^c e^b."""
    cc, jp = sp.IndexedBase("c"), sp.Symbol("j'", integer=True)
    b = lambda j: beta_(clip_expr(j - i_, ell_))
    soft = sp.exp(cc[i_, j_] + b(j_)) / sp.Sum(sp.exp(cc[i_, jp] + b(jp)), (jp, 0, T_ - 1))
    product = (sp.exp(cc[i_, j_]) * sp.exp(b(j_))
               / sp.Sum(sp.exp(cc[i_, jp]) * sp.exp(b(jp)), (jp, 0, T_ - 1)))
    assert (soft - product).expand(power_exp=True) == 0
    return soft, product


def _cut_weight(r, ell):
    """exp(beta_clip(r)) with the two edge taps beta_{+-ell} at -inf: zero unless |r| < ell."""
    return sp.Piecewise((sp.exp(beta_(r)), (r > -ell) & (r < ell)), (0, True))


def prove_interior_rows_are_wu():
    """Step 3 for every T and ell: with beta_{+-ell} = -inf, interior rows are Wu's kernel.

    (a) the clipped weight exp(beta_clip(r)) with the edge taps at -inf is exp(beta_r)
        for |r| < ell and 0 otherwise (the three cases of clip, :func:`prove_clip`);
    (b) with r = j - i the row's denominator sum_{j=0}^{T-1} becomes a sum over
        r = -i .. T-1-i; for an interior row (i = ell-1+n_1, T-1-i = ell-1+n_2, n_1, n_2 >= 0) it
        splits into r <= -ell, |r| <= ell-1 and r >= ell; the outer two vanish term by term and
        the middle one is the denominator of Wu's softmax over its 2 ell - 1 taps.
    The numerators agree entry by entry by (a), so the rows agree.  Returns the row's
    denominator after the index change and Wu's denominator.
    """
    n1, n2, n3, n4 = sp.symbols("n_1 n_2 n_3 n_4", integer=True, nonnegative=True)
    weight = lambda r, ell=ell_: _cut_weight(r, ell)
    # (a) every |r| <= ell-1 is r = n_2 - n_3 with ell = n_2 + n_3 + n_4 + 1; beyond, r = -ell-n_1
    # or ell+n_1
    assert weight(n2 - n3, n2 + n3 + n4 + 1) == sp.exp(beta_(n2 - n3))
    assert weight(-ell_ - n1) == 0 and weight(ell_ + n1) == 0
    # (b) the index change and the split, for an interior row i = ell-1+n_1, T-1-i = ell-1+n_2
    i = ell_ - 1 + n1
    T = i + ell_ + n2
    row_sum = sp.Sum(weight(j_ - i), (j_, 0, T - 1)).change_index(j_, j_ - i, r_)
    assert row_sum.limits[0][1:] == (-i, T - 1 - i)
    left = sp.Sum(weight(r_), (r_, -i, -ell_))
    middle = sp.Sum(weight(r_), (r_, -(ell_ - 1), ell_ - 1))
    right = sp.Sum(weight(r_), (r_, ell_, T - 1 - i))
    assert sp.simplify(left + middle + right - row_sum) == 0        # adjacent ranges
    assert left.change_index(r_, -ell_ - r_, n3).doit() == 0
    assert right.change_index(r_, r_ - ell_, n3).doit() == 0
    wu = sp.Sum(sp.exp(beta_(r_)), (r_, -(ell_ - 1), ell_ - 1))
    return row_sum, wu


def fixed_bias_rows(bias, T: int):
    """(T, T) logits bias(i, j) for a fixed (content-free) scheme."""
    return sp.Matrix(T, T, lambda i, j: bias(i, j))


def t5_like(i, j):
    """T5: a learned scalar per bucket of the offset, beta_bucket(j - i) (any bucket map)."""
    return beta_(sp.Function("bucket")(j - i))


def alibi_bias(i, j, m=sp.Symbol("m", positive=True)):
    """ALiBi's bidirectional bias -m |j - i| (the causal original: m (j - i) on j <= i)."""
    return -m * sp.Abs(j - i)


def kerple_log_bias(i, j, rho1=sp.Symbol("rho_1", positive=True),
                    rho2=sp.Symbol("rho_2", positive=True)):
    """KERPLE's logarithmic kernel (Chi et al. 2022): -rho1 log(1 + rho2 |j - i|).

    The paper's r_1, r_2 are rho_1, rho_2 here (r is the offset)."""
    return -rho1 * sp.log(1 + rho2 * sp.Abs(j - i))


def prove_fixed_kernel(bias):
    """A content-free scheme with this bias is a fixed kernel: bias(i, j) depends on j - i
    only (symbolic i, j, shift), and in every row the weight of offset r against offset 0
    is exp(bias(0, r) - bias(0, 0)), the same ratio for every row i whose window holds
    both positions (symbolic i, r, T)."""
    assert shift_invariant(bias)
    jp = sp.Symbol("j'", integer=True)
    row = lambda j: sp.exp(bias(i_, j)) / sp.Sum(sp.exp(bias(i_, jp)), (jp, 0, T_ - 1))
    ratio = sp.simplify(row(i_ + r_) / row(i_))
    assert sp.simplify(ratio - sp.exp(bias(0, r_) - bias(0, 0))) == 0
    return ratio


def prove_composite_split():
    """Composite attention for every T, ell, d_h: the logit is content + fixed + query-based +
    key-based, each position term indexed by the offset alone (symbolic i, j, ell, d_h), and
    the key-based term read at clip(i - j) is the reversed table read at clip(j - i)
    (because clip(-r) = -clip(r) for every ell, :func:`prove_clip`).  Returns the four terms.
    """
    q, kk = sp.IndexedBase("q"), sp.IndexedBase("key")
    u, u_key = sp.IndexedBase("u"), sp.IndexedBase("u'")
    fwd, back = clip_expr(j_ - i_, ell_), clip_expr(i_ - j_, ell_)
    dot = lambda a, b: sp.Sum(a * b, (c_, 0, d_ - 1)) / sp.sqrt(d_)
    logit = (sp.Sum(q[i_, c_] * (kk[j_, c_] + u[fwd, c_]) + kk[j_, c_] * u_key[back, c_],
                    (c_, 0, d_ - 1)) / sp.sqrt(d_) + beta_(fwd))
    terms = {"content": dot(q[i_, c_], kk[j_, c_]), "fixed": beta_(fwd),
             "query": dot(q[i_, c_], u[fwd, c_]), "key": dot(kk[j_, c_], u_key[back, c_])}
    assert sp.simplify(logit.expand() - sum(t.expand() for t in terms.values())) == 0
    for index in (fwd, back):
        assert shift_invariant(lambda i, j: index.subs({i_: i, j_: j}, simultaneous=True))
    prove_clip()                       # clip(i - j) = -clip(j - i): u'_clip(i-j) = u~'_clip(j-i)
    return terms


def prove_transformer_xl_terms():
    """Transformer-XL's logit (Dai et al. 2019, eq. 'relative'), for every d_h:

        q_i.k_j + q_i.(W_R R_{i-j}) + mu.k_j + nu.(W_R R_{i-j})

    (the paper's u, v are mu, nu here: u_r is composite attention's table) is content + a
    query-based kernel (table W_R R_{-r} at r = j - i) + a per-key bias mu.k_j that does
    not depend on the offset + a fixed kernel nu.(W_R R_{i-j}).  Returns the terms.
    """
    q, kk, u, v = (sp.IndexedBase(n) for n in ("q", "key", "mu", "nu"))
    R = sp.Function("R_W")                       # W_R R_offset, channel c: R_W(offset, c)
    dot = lambda a, b: sp.Sum(a * b, (c_, 0, d_ - 1))
    terms = {"content": dot(q[i_, c_], kk[j_, c_]),
             "query-based": dot(q[i_, c_], R(i_ - j_, c_)),
             "per-key bias": dot(u[c_], kk[j_, c_]),
             "fixed": dot(v[c_], R(i_ - j_, c_))}
    full = sp.Sum((q[i_, c_] + u[c_]) * kk[j_, c_] + (q[i_, c_] + v[c_]) * R(i_ - j_, c_),
                  (c_, 0, d_ - 1))      # Dai et al.: (q_i + u).k_j + (q_i + v).W_R R_{i-j}
    assert sp.simplify(full.expand() - sum(t.expand() for t in terms.values())) == 0
    assert shift_invariant(lambda i, j: terms["fixed"].subs({i_: i, j_: j}, simultaneous=True))
    # the per-key bias reads k_j but not the offset: it is the same for every query i
    assert i_ not in terms["per-key bias"].free_symbols
    return terms
