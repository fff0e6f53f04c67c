"""Every figure in the book is drawn here, in one style.

Figures are PNG with an opaque white background, so they stay readable in the book's dark
mode; mixing matrices always use the same colour map, with row i = output position.

A chapter shows a figure with :func:`show` (in a code cell tagged ``remove-output`` that
draws nothing else) and numbers and captions it in the next Markdown cell::

    ```{glue:figure} fig-mixing
    :name: fig-mixing
    :alt: what the figure shows, in words

    The caption.
    ```
"""
from __future__ import annotations

import math
import random

import matplotlib
import matplotlib.pyplot as plt
import numpy as np

MATRIX_CMAP = "magma_r"
STYLE = {
    "figure.facecolor": "white", "axes.facecolor": "white", "savefig.facecolor": "white",
    "savefig.transparent": False, "figure.dpi": 110, "savefig.dpi": 110, "font.size": 9,
    "axes.titlesize": 9, "axes.spines.top": False, "axes.spines.right": False,
    "image.cmap": MATRIX_CMAP, "axes.grid": False,
}


def setup_notebook(seed: int = 0) -> dict:
    """The first cell of every chapter: seed, figure style, and a one-line report."""
    import torch

    from .config import current_profile, resolve_device

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.set_printoptions(precision=4, sci_mode=False)
    matplotlib.rcParams.update(STYLE)
    try:  # PNG only: nbval compares SVG text, and PNG keeps notebooks small
        from matplotlib_inline.backend_inline import set_matplotlib_formats
        set_matplotlib_formats("png")
    except ImportError:
        pass
    info = {"profile": current_profile(), "device": resolve_device("auto"),
            "torch": torch.__version__.split("+")[0]}
    print(" | ".join(f"{k}: {v}" for k, v in info.items()))
    return info


def show(fig, name: str) -> None:
    """Display ``fig`` in the notebook and keep it under ``name`` for the book's numbered,
    captioned ``{glue:figure}``.  Where myst-nb is not installed (Colab, a bare kernel) the
    figure is only displayed."""
    from IPython.display import display

    try:
        from myst_nb import glue
    except ImportError:
        glue = None
    if glue is not None:
        glue(name, fig, display=False)
    display(fig)
    plt.close(fig)


SIGNED_CMAP = "RdBu_r"          # logits and other signed matrices: white at 0
QUERY_AXIS, KEY_AXIS = "query position i", "key position j"


def _matrix_ticks(ax, n_rows: int, n_cols: int, tokens=None):
    """Integer positions on both axes (every one up to 12, else a few), or the tokens."""
    from matplotlib.ticker import MaxNLocator

    if tokens is not None and len(tokens) <= 16 and n_rows == n_cols == len(tokens):
        ax.set_xticks(range(n_cols), tokens, rotation=90, fontsize=6)
        ax.set_yticks(range(n_rows), tokens, fontsize=6)
        return
    for axis, n in ((ax.xaxis, n_cols), (ax.yaxis, n_rows)):
        if n <= 12:
            axis.set_ticks(range(n))
        else:
            axis.set_major_locator(MaxNLocator(nbins=5, integer=True))
        axis.set_tick_params(labelsize=7)


def _scale(values, vmin=None, vmax=None):
    """(cmap, vmin, vmax) for matrices drawn on one colour scale: signed values get a
    diverging map symmetric about 0, non-negative ones the book's map starting at 0."""
    low = min(float(np.nanmin(v)) for v in values)
    high = max(float(np.nanmax(v)) for v in values)
    if vmin is None and low < 0:
        limit = vmax if vmax is not None else max(abs(low), abs(high), 1e-9)
        return SIGNED_CMAP, -limit, limit
    low = 0.0 if vmin is None else vmin
    return MATRIX_CMAP, low, vmax if vmax is not None else max(high, low + 1e-9)


def plot_matrices(matrices: dict, ncols: int = 4, size: float = 2.1, tokens=None,
                  vmax=None, title: str | None = None, shared=True, label: str = "weight",
                  vmin=None, axis_labels: dict | None = None):
    """Heat maps of (T, T) matrices side by side, one panel per entry of ``matrices``.

    Row i is the query (output) position, column j the key (input) position, and every panel
    says so on its axes.  Every panel is read through a colour bar labelled ``label``:

    * ``shared=True`` (the default): one colour scale and one colour bar for all panels, so
      that panels can be compared;
    * ``shared=False``: a scale and a colour bar per panel;
    * ``shared={label: [panel names], ...}``: one scale and one colour bar per group of
      panels, labelled with the group's key (for example logits next to weights).

    Matrices with a negative entry are drawn with a diverging map centred on 0 (white);
    others with the book's map from 0 (``vmin``/``vmax`` override the limits).
    ``axis_labels`` maps a panel name to its own (x label, y label), for a panel that is not
    a query-by-key matrix.
    """
    names = list(matrices)
    arrays = {name: np.asarray(matrices[name], dtype=float) for name in names}
    if shared is True:
        groups = {label: names}
    elif shared is False:
        groups = {name: [name] for name in names}
    else:
        groups = {key: list(members) for key, members in shared.items()}
        grouped = [n for members in groups.values() for n in members]
        if sorted(grouped) != sorted(names):
            raise ValueError(f"shared groups {grouped} must name every panel once: {names}")
    n = len(names)
    ncols = min(ncols, n)
    nrows = math.ceil(n / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(size * ncols + 0.8, size * nrows + 0.4),
                             squeeze=False, layout="constrained")
    panel = dict(zip(names, axes.flat))
    for key, members in groups.items():
        cmap, low, high = _scale([arrays[m] for m in members], vmin, vmax)
        for name in members:
            ax, m = panel[name], arrays[name]
            image = ax.imshow(m, cmap=cmap, vmin=low, vmax=high, interpolation="nearest")
            ax.set_title(name)
            xlabel, ylabel = (axis_labels or {}).get(name, (KEY_AXIS, QUERY_AXIS))
            ax.set_xlabel(xlabel, fontsize=7)
            ax.set_ylabel(ylabel, fontsize=7)
            _matrix_ticks(ax, *m.shape, tokens=tokens)
        bar = fig.colorbar(image, ax=[panel[m] for m in members], shrink=0.85, aspect=25)
        bar.set_label(label if shared is False else key, fontsize=7)
        bar.ax.tick_params(labelsize=7)
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    if title:
        fig.suptitle(title)
    return fig


def plot_kernels(kernels: dict, offsets=None, title: str | None = None):
    """Line plot of kernels over relative offsets r = j - i (one line per entry)."""
    fig, ax = plt.subplots(figsize=(5, 2.6))
    for name, kernel in kernels.items():
        kernel = np.asarray(kernel, dtype=float)
        r = offsets if offsets is not None else np.arange(len(kernel)) - len(kernel) // 2
        ax.plot(r, kernel, marker="o", ms=3, label=name)
    ax.set_xlabel("offset r = j - i")
    ax.set_ylabel("weight")
    ax.legend(fontsize=7, frameon=False)
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return fig


def plot_curves(curves: dict, xlabel: str = "step", ylabel: str = "loss", title: str | None = None):
    """Several learning curves on one axis: ``curves[name] = (x, y)``.  More than ten curves (a
    whole sweep) get twenty colours, alternating line styles and a legend beside the axis."""
    many = len(curves) > 10
    fig, ax = plt.subplots(figsize=(7.2, 3.6) if many else (5, 3))
    colours = plt.cm.tab20(np.linspace(0, 1, 20)) if many else [None] * len(curves)
    for i, (name, (x, y)) in enumerate(curves.items()):
        ax.plot(x, y, label=name, color=colours[i % len(colours)], ls="--" if many and i % 2 else "-")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if many:
        ax.legend(fontsize=6, frameon=False, loc="center left", bbox_to_anchor=(1.01, 0.5))
    else:
        ax.legend(fontsize=7, frameon=False)
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return fig


def plot_scaling(results: dict, lengths, key: str = "median_ms", ylabel: str = "time per step (ms)",
                 highlight=(), title: str | None = None):
    """Log-log lines of ``results[name][str(T)][key]`` against T; ``highlight`` names get a colour and a label."""
    fig, ax = plt.subplots(figsize=(7.2, 3.8))
    colours = iter(plt.cm.tab20(np.linspace(0, 1, 20)))
    for name, by_T in results.items():
        values = [by_T[str(T)][key] for T in lengths]
        if any(v is None or v <= 0 for v in values):
            continue
        if name in highlight:
            ax.loglog(lengths, values, marker="o", ms=3, lw=1.8, color=next(colours), label=name)
        else:
            ax.loglog(lengths, values, lw=0.7, color="0.7")
    ax.set_xlabel("sequence length T (grey: the other variants)")
    ax.set_ylabel(ylabel)
    ax.minorticks_off()
    ax.set_xticks(lengths, [str(T) for T in lengths])
    ax.legend(fontsize=7, frameon=False, loc="center left", bbox_to_anchor=(1.0, 0.5))
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return fig


def kernel_attention(logits, seq_len: int, clip: bool = True):
    """The attention a kernel alone gives over the keys of a ``seq_len``-token sequence:
    an array (T, T) whose row i is the softmax over keys j of ``logits[clip(j - i) + ℓ]``.

    ``logits`` has 2ℓ+1 entries for the offsets r = j - i = -ℓ..ℓ.  With ``clip`` (composite
    attention's ``outside="clip"``) every key beyond the window reuses the edge entry, so an
    edge column stands for *every* offset beyond ±ℓ; without it (a convolution) those keys
    get nothing."""
    import numpy as np

    logits = np.asarray(logits, dtype=float)
    max_rel = (len(logits) - 1) // 2
    offsets = np.arange(seq_len)[None, :] - np.arange(seq_len)[:, None]          # j - i
    inside = np.abs(offsets) <= max_rel
    scores = logits[np.clip(offsets, -max_rel, max_rel) + max_rel]
    if not clip:
        scores = np.where(inside, scores, -np.inf)
    scores = scores - scores.max(1, keepdims=True)
    weights = np.exp(scores)
    return weights / weights.sum(1, keepdims=True)


def kernel_reach(logits, seq_len: int, clip: bool = True) -> dict:
    """How far a kernel reaches in a ``seq_len``-token sequence, averaged over the queries:
    ``{"reach": mean |j - i| under kernel_attention, "beyond": the mass on keys outside ±ℓ}``.
    Zero logits give the uniform baseline, computed the same way."""
    import numpy as np

    weights = kernel_attention(logits, seq_len, clip)
    max_rel = (len(logits) - 1) // 2
    distance = np.abs(np.arange(seq_len)[None, :] - np.arange(seq_len)[:, None])
    return {"reach": float((weights * distance).sum(1).mean()),
            "beyond": float((weights * (distance > max_rel)).sum(1).mean())}
