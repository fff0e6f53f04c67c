"""SymPy builders for the derivation chapters (Part I).

Small, explicit symbolic objects -- sequences of T = 4 or 5 tokens with d = 2 channels --
and the mixing matrices of each variant written out entry by entry.  Chapters display
them and then assert identities with :func:`is_zero`; ``tests/test_symbolic.py`` asserts
the same identities, so a change here breaks pytest first.
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


def offset_symbols(name: str, k: int) -> dict:
    """Symbols name_r for the offsets r = -k .. k (a kernel, a bias table)."""
    return {r: sp.Symbol(f"{name}_{{{r}}}", real=True) for r in range(-k, k + 1)}


def offset_vectors(name: str, k: int, d: int) -> dict:
    """Row vectors name_r (1, d) for r = -k .. k (relative embeddings)."""
    return {r: sp.Matrix(1, d, lambda _, c: sp.Symbol(f"{name}_{{{r},{c}}}", real=True))
            for r in range(-k, k + 1)}


def clip(r: int, k: int) -> int:
    return max(-k, min(k, r))


def is_zero(expr) -> bool:
    """True when ``expr`` (a scalar or a matrix) simplifies to exactly zero."""
    if isinstance(expr, sp.MatrixBase):
        return all(sp.simplify(e) == 0 for e in expr)
    return sp.simplify(expr) == 0


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
def fixed_relative_term(T: int, beta: dict, k: int) -> sp.Matrix:
    """beta_clip(j-i): a per-offset scalar, the same for every query (a fixed kernel)."""
    return sp.Matrix(T, T, lambda i, j: beta[clip(j - i, k)])


def query_relative_term(Q: sp.Matrix, a: dict, k: int, scale=1) -> sp.Matrix:
    """q_i . a_clip(j-i): a kernel over offsets generated from the query (Shaw et al.)."""
    T = Q.shape[0]
    return sp.Matrix(T, T, lambda i, j: (Q[i, :] * a[clip(j - i, k)].T)[0] * scale)


def key_relative_term(K: sp.Matrix, a: dict, k: int, scale=1) -> sp.Matrix:
    """k_j . a'_clip(i-j): a kernel generated from the key, indexed by i - j."""
    T = K.shape[0]
    return sp.Matrix(T, T, lambda i, j: (K[j, :] * a[clip(i - j, k)].T)[0] * scale)


# --- convolutions ---------------------------------------------------------------------------------
def band_matrix(T: int, kernel, k: int) -> sp.Matrix:
    """(T, T) band: entry (i, j) = kernel(i)[j - i] for |j - i| <= k, else 0.

    ``kernel`` is a dict offset -> weight (the same for every row: a Toeplitz matrix) or a
    function i -> dict (a row-varying, dynamic kernel).
    """
    row = kernel if callable(kernel) else (lambda i: kernel)
    return sp.Matrix(T, T, lambda i, j: row(i)[j - i] if abs(j - i) <= k else 0)


def depthwise_convolution(X: sp.Matrix, W: list, k: int) -> sp.Matrix:
    """Zero-padded depthwise convolution: y_ic = sum_r W[c][r] x_{i+r, c}.

    ``W[c]`` is a dict offset -> weight for channel c.
    """
    T, d = X.shape
    return sp.Matrix(T, d, lambda i, c: sum(W[c][r] * X[i + r, c]
                                            for r in range(-k, k + 1) if 0 <= i + r < T))


def softmax_kernel(w: dict) -> dict:
    """Softmax over the taps of a kernel (Wu et al.'s normalisation)."""
    total = sum(sp.exp(v) for v in w.values())
    return {r: sp.exp(v) / total for r, v in w.items()}


def lightweight_convolution(X: sp.Matrix, w_per_head: list, k: int) -> sp.Matrix:
    """Wu et al.'s LightConv: one softmax kernel per head, tied across its channels.

    ``w_per_head[h]`` is a dict of logits; channels are split into equal contiguous heads.
    """
    T, d = X.shape
    H = len(w_per_head)
    kernels = [softmax_kernel(w) for w in w_per_head]
    return depthwise_convolution(X, [kernels[c * H // d] for c in range(d)], k)


# --- rotary embeddings and Cordonnier et al.'s construction --------------------------------------
def rotation(angle) -> sp.Matrix:
    return sp.Matrix([[sp.cos(angle), -sp.sin(angle)], [sp.sin(angle), sp.cos(angle)]])


def rotary_score(q: sp.Matrix, k: sp.Matrix, m, n, theta) -> sp.Expr:
    """(R_m q) . (R_n k) for 2-d column vectors q, k at positions m, n."""
    return ((rotation(m * theta) * q).T * (rotation(n * theta) * k))[0]


def quadratic_score(delta, shift, alpha) -> sp.Expr:
    """Cordonnier et al.'s relative score -alpha (|delta - shift|^2 - |shift|^2) for one head."""
    return -alpha * ((delta - shift) ** 2 - shift ** 2)


# --- parameter counts as expressions in H, d_h, k ------------------------------------------------
H, d_h, k_sym = sp.symbols("H d_h k", positive=True, integer=True)

EXTRA_PARAMETERS = {
    "composite_fixed": H * (2 * k_sym + 1),
    "composite_query": d_h * (2 * k_sym + 1),
    "composite_key": d_h * (2 * k_sym + 1),
    "composite": H * (2 * k_sym + 1) + 2 * d_h * (2 * k_sym + 1),
}
