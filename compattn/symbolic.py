"""SymPy builders for the derivation chapters (Part I).

Two kinds of objects.  The builders write the mixing matrix of each variant out entry by
entry for a small instance (T = 4 .. 7 tokens, d_h = 2 channels, ell = 1 or 2), which a
chapter can display and check with :func:`is_zero` (equal) or :func:`counterexample`
(different: one exact rational point where an entry is clearly away from zero).  The
``prove_*`` functions prove the main identities for *symbolic* T, ell and d_h on symbolic
indices i, j, r (``IndexedBase``, ``Sum``, ``KroneckerDelta``, ``Piecewise``); each
asserts every step its chapter states and returns what it compared.  A proof puts
assumptions on parameters only, never on a summation index outside its range, and reads
the facts it checks (which table index a term uses) from the expressions themselves.
``tests/test_symbolic.py`` and ``tests/test_part_one.py`` run the same checks, so a change
here or in the library breaks pytest first; ``checks/mutants/part_one.py`` plants errors
here that those tests must catch.

The window (offsets per direction) is ``ell``, printed as the book's symbol; the papers call
it k, a letter the book keeps for the keys k_j (here ``key[j, c]`` or ``sequence("k", ...)``).
The content logit is eta (c is a channel).
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


COUNTEREXAMPLE_MARGIN = sp.Rational(1, 1000)


def counterexample(expr, values: dict | None = None, margin=COUNTEREXAMPLE_MARGIN):
    """Prove ``expr != 0`` (a scalar, or a matrix with at least one non-zero entry) by one
    exact point: every free symbol gets an exact rational (``values`` first, then 1/3, -2/3,
    1, ... in name order), and some entry must come out with magnitude above ``margin``
    (1/1000 unless told), certified to 30 significant digits.  Returns the substitution and
    that entry's value.

    "simplify did not reach 0" is not a proof of inequality; one point where the expression
    is clearly non-zero is.  So floats are refused (in ``expr`` or in ``values``: a rounded
    number can make a zero look non-zero), a value that evalf cannot tell from zero (such
    as ``0.e-125``) does not count, and each entry of a matrix is judged on its own (entries
    that cancel in a sum or a norm prove nothing)."""
    values = {sp.sympify(s): sp.sympify(v) for s, v in (values or {}).items()}
    floats = ([v for v in values.values() if v.atoms(sp.Float)]
              + sorted(expr.atoms(sp.Float), key=str))
    if floats:
        raise ValueError("counterexample needs exact numbers (sp.Rational), "
                         f"got floats {floats[:3]}")
    free = sorted(expr.free_symbols - set(values), key=str)
    for n, symbol in enumerate(free):
        values[symbol] = sp.Rational(n % 7 + 1, 3) * (-1) ** n
    value = expr.subs(values)
    entries = list(value) if isinstance(value, sp.MatrixBase) else [value]
    best, best_size = None, sp.Integer(0)
    for entry in entries:
        if entry.free_symbols:
            raise ValueError(f"{entry} still has free symbols after substituting {values}")
        try:       # strict: an error, not a rounded 0.e-125, when evalf cannot decide
            size = abs(sp.N(entry, 30, strict=True))
        except sp.core.evalf.PrecisionExhausted:
            continue
        if size > best_size:
            best, best_size = entry, size
    assert best_size > margin, (f"no counterexample at {values}: every entry is within "
                                f"{margin} of zero (largest magnitude {best_size})")
    return values, sp.N(best, 15)


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
# the two never print alike.  Each returns the SymPy expressions it compared, so a chapter can
# display them; each asserts on failure.
#
# Assumptions are put on *parameters* only (ell >= 1; the n_* that place a row or an offset
# are >= 0), never used on a summation index outside its range: every Sum that a proof splits
# or evaluates term by term is first shown to have an ordinary range (see _proper_range).
i_, j_, r_, c_ = sp.symbols("i j r c", integer=True)
T_ = sp.Symbol("T", integer=True, positive=True)
d_, ell_ = d_h, ell_sym         # the symbols of the parameter counts above, not twins
x_, w_ = sp.IndexedBase("x"), sp.IndexedBase("w")
beta_ = sp.Function("beta", real=True)       # a kernel's logits: real, so e^beta > 0


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


def table_index(expr, table: sp.IndexedBase):
    """The row index at which ``expr`` reads ``table`` (one index, or an AssertionError)."""
    read = {entry.indices[0] for entry in expr.atoms(sp.Indexed) if entry.base == table}
    assert len(read) == 1, f"{table} is read at {read or 'no index'} in {expr}"
    return read.pop()


def assert_reads_offset(index, sign: int = 1):
    """``index`` (an expression in i, j, ell) is clip(sign * (j - i)): shift-invariant, and
    -ell / r / +ell on the three cases of the clip with j = i + sign * r.  An absolute index
    (clip(j)) or the other direction (clip(i - j) where clip(j - i) is claimed) fails."""
    as_function = lambda i, j: index.subs({i_: i, j_: j}, simultaneous=True)
    assert shift_invariant(as_function), f"{index} is not a function of j - i"
    for (r, ell), expected in zip(offset_cases().values(), ("left", "inside", "right")):
        at_offset = index.subs({j_: i_ + sign * r}).subs(ell_, ell)
        target = {"left": -ell, "inside": r, "right": ell}[expected]
        assert sp.simplify(at_offset - target) == 0, (index, expected, at_offset)


def prove_relative_key_split():
    """Step 1 of the theorem for every d_h: q_i.(k_j + a_clip(j-i)) = q_i.k_j + q_i.a_clip(j-i),
    and the kernel term reads its table at clip(j - i) -- an offset, not a position.

    Returns (logit, content, kernel) as sums over the d_h channels.
    """
    q, key, a = sp.IndexedBase("q"), sp.IndexedBase("key"), sp.IndexedBase("a")
    idx = clip_expr(j_ - i_, ell_)
    logit = sp.Sum(q[i_, c_] * (key[j_, c_] + a[idx, c_]), (c_, 0, d_ - 1)) / sp.sqrt(d_)
    content = sp.Sum(q[i_, c_] * key[j_, c_], (c_, 0, d_ - 1)) / sp.sqrt(d_)
    kernel = sp.Sum(q[i_, c_] * a[idx, c_], (c_, 0, d_ - 1)) / sp.sqrt(d_)
    assert sp.simplify(logit.expand() - content.expand() - kernel.expand()) == 0
    assert table_index(kernel, a) == table_index(logit, a)      # the same table entry
    assert_reads_offset(table_index(kernel, a))                  # ... at clip(j - i)
    return logit, content, kernel


def prove_joint_softmax():
    """Step 2 for every T: softmax_j(eta_ij + b(j-i)) = e^eta e^b / sum_j' e^eta e^b, with
    eta_ij the content logit."""
    eta, jp = sp.IndexedBase("eta"), sp.Symbol("j'", integer=True)
    b = lambda j: beta_(clip_expr(j - i_, ell_))
    soft = sp.exp(eta[i_, j_] + b(j_)) / sp.Sum(sp.exp(eta[i_, jp] + b(jp)), (jp, 0, T_ - 1))
    product = (sp.exp(eta[i_, j_]) * sp.exp(b(j_))
               / sp.Sum(sp.exp(eta[i_, jp]) * sp.exp(b(jp)), (jp, 0, T_ - 1)))
    assert (soft - product).expand(power_exp=True) == 0
    return soft, product


# --- step 3: sums over ranges, decided without assumptions on the summation index -------------
def _proper_range(lo, hi) -> bool:
    """lo..hi is an ordinary (possibly empty) range for every value of the parameters:
    hi - lo + 1 >= 0.  SymPy's Sum follows Karr's convention, in which a 'reversed' range
    (hi < lo - 1) adds *minus* the terms outside it, so a split into reversed ranges would
    prove things about terms that are not in the sum."""
    return bool((hi - lo + 1).is_nonnegative)


def _closed_upwards(relation, r):
    """True if the set of r where ``relation`` (linear in r) holds is {r >= something},
    False if it is {r <= something}."""
    slope = sp.diff(relation.lhs - relation.rhs, r)
    assert slope.is_number and slope != 0, f"{relation} is not linear in {r}"
    greater = isinstance(relation, (sp.StrictGreaterThan, sp.GreaterThan))
    return greater == (slope > 0)


def _condition_on_range(condition, r, lo, hi):
    """True / False when ``condition`` holds / fails for every integer r in lo..hi, else None.

    A relation linear in r holds on a half-line, so it holds on all of lo..hi exactly when
    it holds at the end of the range nearer that half-line's edge: at r = lo + t for every
    t >= 0 (closed upwards) or at r = hi - t (closed downwards); it fails on all of lo..hi
    when it fails at the other end.  t >= 0 is true on the range because it is proper."""
    if condition in (sp.true, sp.false):
        return bool(condition)
    t = sp.Dummy("t", integer=True, nonnegative=True)
    if isinstance(condition, sp.And):
        verdicts = [_condition_on_range(part, r, lo, hi) for part in condition.args]
        return False if False in verdicts else (True if all(verdicts) else None)
    upwards = _closed_upwards(condition, r)
    holds = condition.subs(r, (lo + t) if upwards else (hi - t))
    fails = condition.subs(r, (hi - t) if upwards else (lo + t))
    return True if holds == sp.true else (False if fails == sp.false else None)


def value_on_range(summand, r, lo, hi):
    """What ``summand`` (a Piecewise whose conditions are linear in r, or an expression) is
    for every integer r in the proper range lo..hi, decided piece by piece."""
    assert _proper_range(lo, hi), f"{lo}..{hi} is not a proper range for every parameter"
    if not isinstance(summand, sp.Piecewise):
        return summand
    for expr, condition in summand.args:
        verdict = _condition_on_range(condition, r, lo, hi)
        if verdict is True:
            return expr
        assert verdict is False, f"{condition} neither holds nor fails on {lo}..{hi}"
    raise AssertionError(f"no piece of {summand} applies on {lo}..{hi}")


def split_sum(summand, r, lo, hi, cuts):
    """sum_{r=lo}^{hi} summand as adjacent proper ranges lo..c_1-1, c_1..c_2-1, ..., c_n..hi,
    each with the value the summand takes on it: a list of (value, r, start, stop)."""
    bounds = [lo, *cuts, hi + 1]
    pieces = []
    for start, stop in zip(bounds, bounds[1:]):
        pieces.append((value_on_range(summand, r, start, stop - 1), r, start, stop - 1))
    return pieces


def _total(pieces):
    """The sum of the non-zero pieces, as SymPy Sums over their ranges."""
    return sp.Add(*[sp.Sum(value, (r, lo, hi)) for value, r, lo, hi in pieces if value != 0])


def _positive_sum(pieces) -> bool:
    """A sum of pieces, each over a range with at least one term, of positive terms."""
    return all((hi - lo + 1).is_positive and value.is_positive for value, r, lo, hi in pieces)


def edge_cut_weight(r, ell=ell_):
    """exp(beta_clip(r)) with the two edge taps beta_{+-ell} at -inf: the table entry at the
    clipped index s = clip(r) is e^{beta_s} for |s| < ell and 0 at s = +-ell."""
    table = lambda s: sp.Piecewise((sp.exp(beta_(s)), (s > -ell) & (s < ell)), (0, True))
    return table(clip_expr(r, ell))


def window_weight(r, ell=ell_):
    """e^{beta_r} for |r| < ell, else 0: the edge-cut weight written without the clip, a
    Piecewise whose conditions are linear in r (so sums of it can be decided range by range).
    Equal to :func:`edge_cut_weight` by the three cases of the clip (step 3 (a))."""
    return sp.Piecewise((sp.exp(beta_(r)), (r > -ell) & (r < ell)), (0, True))


def wu_numerator(r, ell=ell_):
    """Entry (i, i + r) of Wu's band of width 2 ell - 1 before normalisation:
    sum_{|r'| <= ell-1} e^{beta_r'} [r = r'] (the band form of chapter 2)."""
    rp = sp.Symbol("r'", integer=True)
    return sp.Sum(sp.exp(beta_(rp)) * sp.KroneckerDelta(r, rp), (rp, 1 - ell, ell - 1)).doit()


# Rows of a T-token sequence, placed by non-negative parameters: every row (i, T) of every
# window ell >= 1 is one of these cases.  Wu's width-(2 ell - 1) kernel covers the offsets
# W = 1-ell .. ell-1; row i sees the offsets -i .. T-1-i ("after" = T - 1 - i).  "Short" = the
# row's offsets stop inside W on that side.  Each case names where the row's range is cut
# (at the borders of W inside it) and where W is cut (at the row's ends inside it).
def row_cases():
    n1, n2, m, p = sp.symbols("n_1 n_2 m p", integer=True, nonnegative=True)
    ell = ell_

    def case(i, after, ell, row_cuts, window_cuts):
        return {"i": i, "after": after, "ell": ell, "row cuts": row_cuts,
                "window cuts": window_cuts}

    # i >= ell-1 and T-1-i >= ell-1: the row's range holds W, with r <= -ell and r >= ell around it
    interior = case(ell - 1 + n1, ell - 1 + n2, ell, [1 - ell, ell], [])
    # i <= ell-2 and T-1-i >= ell-1: W's taps 1-ell .. -i-1 fall before the sequence
    i, ell_l = n1, n1 + 2 + m
    left = case(i, n1 + 1 + m + n2, ell_l, [ell_l], [-i])
    # i >= ell-1 and T-1-i <= ell-2: W's taps T-i .. ell-1 fall after it
    after, ell_r = n2, n2 + 2 + m
    right = case(n2 + 1 + m + n1, after, ell_r, [1 - ell_r], [after + 1])
    # both short (T small): W loses taps on both sides; i <= T-1-i, or i > T-1-i
    i, after = n1, n1 + p
    both_a = case(i, after, n1 + p + 2 + m, [], [-i, after + 1])
    i, after = n2 + 1 + p, n2
    both_b = case(i, after, n2 + p + 3 + m, [], [-i, after + 1])
    return {"interior": interior, "left short": left, "right short": right,
            "both short, i <= T-1-i": both_a, "both short, i > T-1-i": both_b}


def _row_pieces(case):
    """The row's denominator sum_{j=0}^{T-1} e^{beta_clip(j-i)} (edge taps cut), written over
    r = j - i = -i .. T-1-i, and Wu's denominator over W, each split at the case's cuts into
    proper ranges on which the summand is decided."""
    i, after, ell = case["i"], case["after"], case["ell"]
    weight = lambda r: window_weight(r, ell)
    T = i + 1 + after
    row = sp.Sum(weight(j_ - i), (j_, 0, T - 1)).change_index(j_, j_ - i, r_)
    assert row.limits[0][1:] == (-i, after) and row.function == weight(r_)
    row_pieces = split_sum(row.function, r_, -i, after, case["row cuts"])
    wu_pieces = split_sum(sp.exp(beta_(r_)), r_, 1 - ell, ell - 1, case["window cuts"])
    return row, row_pieces, wu_pieces


def prove_interior_rows_are_wu():
    """Step 3 for every T and ell: with beta_{+-ell} = -inf, the content-free clipped kernel's
    rows are Wu's zero-padded kernel of width 2 ell - 1 exactly on the interior rows.

    (a) the clipped weight e^{beta_clip(r)} with the edge taps at -inf is e^{beta_r} for
        |r| < ell and 0 otherwise, on the three cases of clip: the numerator of entry
        (i, j) is Wu's band numerator at r = j - i;
    (b) with r = j - i the row's denominator sum_{j=0}^{T-1} becomes a sum over
        r = -i .. T-1-i; for an interior row (i = ell-1+n_1, T-1-i = ell-1+n_2, n_1, n_2 >= 0)
        it splits into the proper ranges r <= -ell, |r| <= ell-1 and r >= ell; the outer two
        vanish term by term and the middle one *is* Wu's denominator;
    (c) every other row misses part of Wu's window: its numerators are still Wu's, but Wu's
        denominator exceeds the row's by a non-empty sum of positive terms e^{beta_r}, so
        each non-zero entry differs (the softmax renormalises, zero padding loses taps).
    Returns the interior row's denominator after the index change and Wu's denominator.
    """
    for r, ell in offset_cases().values():                                        # (a)
        assert sp.simplify(edge_cut_weight(r, ell) - window_weight(r, ell)) == 0, (r, ell)
        assert sp.simplify(window_weight(r, ell) - wu_numerator(r, ell)) == 0, (r, ell)
    results = {}
    for name, case in row_cases().items():
        row, row_pieces, wu_pieces = _row_pieces(case)
        row_total, wu_total = _total(row_pieces), _total(wu_pieces)
        if name == "interior":                                                     # (b)
            assert [value for value, *_ in row_pieces] == [0, sp.exp(beta_(r_)), 0], row_pieces
            assert row_total == sp.Sum(sp.exp(beta_(r_)), (r_, 1 - ell_, ell_ - 1)) == wu_total
            results[name] = (row, wu_total)
        else:                                                                      # (c)
            shared = {piece for piece in wu_pieces if sp.Sum(piece[0], piece[1:]) in
                      sp.Add.make_args(row_total)}
            missing = [piece for piece in wu_pieces if piece not in shared]
            assert shared and missing and _positive_sum(missing), (name, wu_pieces)
            assert sp.simplify(wu_total - row_total - _total(missing)) == 0, name
    return results["interior"]


# --- fixed schemes ------------------------------------------------------------------------------
def t5_like(i, j):
    """T5: a learned scalar per bucket of the offset, beta_bucket(j - i) (any bucket map)."""
    return beta_(sp.Function("bucket")(j - i))


def alibi_bias(i, j, m=sp.Symbol("m", positive=True)):
    """ALiBi's bidirectional bias -m |j - i| (the causal original: m (j - i) on j <= i)."""
    return -m * sp.Abs(j - i)


def alibi_slopes_exact(n_heads: int) -> list:
    """ALiBi's head slopes m_h as exact powers of two (Press et al. 2022, the authors'
    ``get_slopes``).  For H a power of two, m_h = 2^(-8h/H), h = 1 .. H.  Otherwise, with P
    the largest power of two below H: the P slopes of a P-head model, then the slopes
    2^(-8h/(2P)) for odd h = 1, 3, 5, ... of a 2P-head model, the first H - P of them."""
    if isinstance(n_heads, bool) or not isinstance(n_heads, int) or n_heads < 1:
        raise ValueError(f"n_heads must be a positive int, got {n_heads!r}")
    geometric = lambda n: [sp.Integer(2) ** sp.Rational(-8 * h, n) for h in range(1, n + 1)]
    P = 2 ** (n_heads.bit_length() - 1)
    if P == n_heads:
        return geometric(n_heads)
    return geometric(P) + geometric(2 * P)[0::2][:n_heads - P]


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


def prove_decays_with_distance(bias):
    """A distance penalty: the kernel weight falls strictly as the distance |j - i| grows, the
    same on both sides, for every value of the scheme's positive parameters.  As a function
    of the distance x > 0 the bias has a negative derivative and tends to bias(0, 0) as
    x -> 0, so e^{bias} is largest at offset 0 and strictly decreasing in |r|.  Returns the
    derivative."""
    prove_fixed_kernel(bias)
    x = sp.Symbol("x", positive=True)
    slope = sp.simplify(sp.diff(bias(0, x), x))
    assert slope.is_negative, f"the bias {bias(0, x)} does not fall with the distance x"
    assert sp.limit(bias(0, x), x, 0, "+") == bias(0, 0)
    assert sp.simplify(bias(0, r_) - bias(0, -r_)) == 0          # the same on both sides
    return slope


def prove_composite_split():
    """Composite attention for every T, ell, d_h: the logit is content + fixed + query-based +
    key-based, each position term indexed by the offset alone (symbolic i, j, ell, d_h): the
    fixed and query-based terms read their tables at clip(j - i), the key-based term at
    clip(i - j) = -clip(j - i), i.e. the reversed table read at clip(j - i) (because
    clip(-r) = -clip(r) for every ell, :func:`prove_clip`).  Returns the four terms.
    """
    q, key = sp.IndexedBase("q"), sp.IndexedBase("key")
    u, u_key = sp.IndexedBase("u"), sp.IndexedBase("u'")
    fwd, back = clip_expr(j_ - i_, ell_), clip_expr(i_ - j_, ell_)
    dot = lambda a, b: sp.Sum(a * b, (c_, 0, d_ - 1)) / sp.sqrt(d_)
    logit = (sp.Sum(q[i_, c_] * (key[j_, c_] + u[fwd, c_]) + key[j_, c_] * u_key[back, c_],
                    (c_, 0, d_ - 1)) / sp.sqrt(d_) + beta_(fwd))
    terms = {"content": dot(q[i_, c_], key[j_, c_]), "fixed": beta_(fwd),
             "query": dot(q[i_, c_], u[fwd, c_]), "key": dot(key[j_, c_], u_key[back, c_])}
    assert sp.simplify(logit.expand() - sum(t.expand() for t in terms.values())) == 0
    assert_reads_offset(terms["fixed"].args[0])                      # beta at clip(j - i)
    assert_reads_offset(table_index(terms["query"], u))              # u at clip(j - i)
    assert_reads_offset(table_index(terms["key"], u_key), sign=-1)   # u' at clip(i - j)
    prove_clip()                       # clip(i - j) = -clip(j - i): u'_clip(i-j) = u~'_clip(j-i)
    return terms


def prove_transformer_xl_terms():
    """Transformer-XL's logit (Dai et al. 2019, eq. 'relative'), for every d_h:

        (q_i.k_j + q_i.(W_R R_{i-j}) + mu.k_j + nu.(W_R R_{i-j})) / sqrt(d_h)

    (the paper's u, v are mu, nu here: u_r is composite attention's table; its code scales
    the whole score by 1/sqrt(d_h), as every term here is) is content + a query-based
    kernel (table W_R R_{-r} at r = j - i) + a per-key bias mu.k_j that does not depend on
    the offset + a fixed kernel nu.(W_R R_{i-j}).  Returns the terms.
    """
    q, key, u, v = (sp.IndexedBase(n) for n in ("q", "key", "mu", "nu"))
    R = sp.Function("R_W")                       # W_R R_offset, channel c: R_W(offset, c)
    dot = lambda a, b: sp.Sum(a * b, (c_, 0, d_ - 1)) / sp.sqrt(d_)
    terms = {"content": dot(q[i_, c_], key[j_, c_]),
             "query-based": dot(q[i_, c_], R(i_ - j_, c_)),
             "per-key bias": dot(u[c_], key[j_, c_]),
             "fixed": dot(v[c_], R(i_ - j_, c_))}
    # Dai et al.: ((q_i + u).k_j + (q_i + v).W_R R_{i-j}) / sqrt(d_h)
    full = sp.Sum((q[i_, c_] + u[c_]) * key[j_, c_] + (q[i_, c_] + v[c_]) * R(i_ - j_, c_),
                  (c_, 0, d_ - 1)) / sp.sqrt(d_)
    assert sp.simplify(full.expand() - sum(t.expand() for t in terms.values())) == 0
    assert shift_invariant(lambda i, j: terms["fixed"].subs({i_: i, j_: j}, simultaneous=True))
    # the per-key bias reads k_j but not the offset: it is the same for every query i
    assert i_ not in terms["per-key bias"].free_symbols
    return terms
