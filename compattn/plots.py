"""Every figure in the book is drawn here, in one style.

Figures are PNG with an opaque white background, so they stay readable in the book's dark
mode; mixing matrices always use the same colour map, with row i = output position.

Line plots (:func:`plot_kernels`, :func:`plot_curves`, :func:`plot_scaling`) are drawn
to be read on a phone: at most 5.6 inches wide with text of at least 10 points, so that on
a 390-px screen no letter is smaller than 8 px (long legend labels are broken into lines); at most :data:`MAX_LINES` coloured lines
per panel (more are split over panels stacked one under another, each with its own
legend); colours that stay apart for colour-blind readers; legends beside or below the
data, never on it.  ``tests/test_figures.py`` holds every one of them to this.

A chapter shows a figure with :func:`show` (in a code cell tagged ``remove-output`` that
draws nothing else) and numbers and captions it in the next Markdown cell::

    ```{glue:figure} fig-mixing
    :name: fig-mixing
    :alt: what the figure shows, in words

    The caption.
    ```

The website and the PDF show it as "Figure 7.1" with its caption and alt text (the
output of the code cell itself is hidden); the notebook edition and Jupyter show the
image as the code cell's output, with the caption under it.
"""
from __future__ import annotations

import math
import random
import re

import matplotlib
import matplotlib.pyplot as plt
import numpy as np

MATRIX_CMAP = "magma_r"
MAX_LINES = 8                 # coloured lines one panel may hold
# Okabe and Ito's colours (their yellow, faint on white, replaced by an olive), told apart
# with the common colour-vision deficiencies
COLOURS = ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#000000", "#999933"]
LINE_STYLES = ["-", "--", "-.", ":"]
WIDTH_IN = 5.6                # the widest line plot, legend included
LINE_RC = {"font.size": 11, "axes.titlesize": 11, "axes.labelsize": 11,
           "xtick.labelsize": 10, "ytick.labelsize": 10, "legend.fontsize": 10,
           "figure.titlesize": 11}
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
    captioned ``{glue:figure}``.

    One output does both: the figure displayed as usual (``image/png``, which nbval does
    not compare), marked with ``name`` for myst-nb.  (Gluing a second, hidden copy would
    store the PNG under a type nbval compares byte by byte and Jupyter cannot show.)
    Where myst-nb is not installed (Colab, a bare kernel) the figure is only displayed."""
    from IPython.display import display

    try:
        from myst_nb import glue
    except ImportError:
        glue = None
    if glue is not None:
        glue(name, fig, display=True)
    else:
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


def panels_of(names: list, most: int = MAX_LINES) -> list[list]:
    """``names`` in as few panels of at most ``most`` as possible, as even as possible."""
    if not names:
        return [[]]
    n_panels = math.ceil(len(names) / most)
    size = math.ceil(len(names) / n_panels)
    return [names[k:k + size] for k in range(0, len(names), size)]


def _stacked_axes(groups: list, panel_height: float, sharex: bool = True, single=None):
    """One panel per group of names, each tall enough for its legend beside it.  ``single``
    is the size of a figure with one panel (kept as it was, so the ``<Figure size ...>`` that
    the chapters' stored outputs print, and nbval compares, stays the same)."""
    if single is not None and len(groups) == 1:
        fig, ax = plt.subplots(figsize=single)
        return fig, [ax]
    heights = [max(panel_height, 0.2 * sum(wrap_label(str(n)).count("\n") + 1 for n in names) + 0.3)
               for names in groups]
    fig, axes = plt.subplots(len(groups), 1, figsize=(WIDTH_IN, sum(heights) + 0.4), sharex=sharex,
                             squeeze=False, gridspec_kw={"height_ratios": heights})
    return fig, list(axes[:, 0])


LEGEND_CHARS = 16            # a longer label is broken into lines, so the legend stays narrow


def wrap_label(label: str, width: int = LEGEND_CHARS) -> str:
    """``label`` in lines of at most about ``width`` characters, broken after "_", " " or "-"."""
    lines, line = [], ""
    for piece in re.findall(r"[^_ -]+[_ -]?|[_ -]", label):
        if line and len(line) + len(piece.rstrip("_ -")) > width:
            lines.append(line.rstrip())
            line = ""
        line += piece
    lines.append(line.rstrip())
    return "\n".join(lines)


def _legend_beside(ax) -> None:
    """The legend to the right of the axes, outside the data."""
    handles, labels = ax.get_legend_handles_labels()
    ax.legend(handles, [wrap_label(label) for label in labels], frameon=False, loc="upper left",
              bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0, handlelength=2.2)


def _style(i: int) -> dict:
    return {"color": COLOURS[i % len(COLOURS)], "ls": LINE_STYLES[(i // len(COLOURS)) % len(LINE_STYLES)]}


def plot_kernels(kernels: dict, offsets=None, title: str | None = None):
    """Kernels over relative offsets r = j - i, one line per entry (more than
    :data:`MAX_LINES` entries are split over panels)."""
    names = list(kernels)
    with plt.rc_context(LINE_RC):
        groups = panels_of(names)
        fig, axes = _stacked_axes(groups, 2.4, single=(5, 2.6))
        for ax, group in zip(axes, groups):
            for i, name in enumerate(group):
                kernel = np.asarray(kernels[name], dtype=float)
                r = np.asarray(offsets) if offsets is not None else \
                    np.arange(len(kernel)) - len(kernel) // 2
                ax.plot(r, kernel, marker="o", ms=3.5, lw=1.6, label=name, **_style(i))
            ax.set_ylabel("weight")
            _legend_beside(ax)
        axes[-1].set_xlabel("offset r = j - i")
        if title:
            axes[0].set_title(title, loc="left")
        fig.tight_layout()
    return fig


def plot_curves(curves: dict, xlabel: str = "step", ylabel: str = "loss", title: str | None = None,
                groups: dict | None = None):
    """Learning curves, ``curves[name] = (x, y)``: at most :data:`MAX_LINES` per panel,
    panels stacked with a shared x axis, each with its legend beside it.  ``groups``
    (``{panel title: [names]}``) chooses the panels; by default the curves are split
    evenly in their order."""
    with plt.rc_context(LINE_RC):
        if groups is None:
            panels = [(None, g) for g in panels_of(list(curves))]
        else:
            panels = list(groups.items())
        fig, axes = _stacked_axes([names for _, names in panels], 2.3, single=(5, 3))
        for ax, (panel_title, names) in zip(axes, panels):
            for i, name in enumerate(names):
                x, y = curves[name]
                ax.plot(x, y, lw=1.5, label=name, **_style(i))
            ax.set_ylabel(ylabel)
            if panel_title:
                ax.set_title(panel_title, loc="left")
            _legend_beside(ax)
        axes[-1].set_xlabel(xlabel)
        if title:
            if panels[0][0]:
                fig.suptitle(title, x=0.02, ha="left")
            else:
                axes[0].set_title(title, loc="left")
        fig.tight_layout()
    return fig


def plot_scaling(results: dict, lengths, key: str = "median_ms", ylabel: str = "time per step (ms)",
                 highlight=(), title: str | None = None, groups: dict | None = None):
    """Log-log lines of ``results[name][str(T)][key]`` against T.  The ``highlight`` names
    get a colour and a label, the others are grey; more than :data:`MAX_LINES` highlighted
    names are split over panels stacked one under another (``groups``, ``{panel title:
    [names]}``, chooses them), each drawing every other variant in grey behind its own."""
    usable = {name: [by_T[str(T)][key] for T in lengths] for name, by_T in results.items()
              if all(str(T) in by_T for T in lengths)}
    usable = {name: v for name, v in usable.items() if all(x is not None and x > 0 for x in v)}
    if groups is None:
        chosen = [n for n in highlight if n in usable]
        panels = [(None, g) for g in panels_of(chosen, MAX_LINES - 1)]
    else:
        panels = [(t, [n for n in names if n in usable]) for t, names in groups.items()]
    with plt.rc_context(LINE_RC):
        fig, axes = _stacked_axes([names for _, names in panels], 2.6)
        for ax, (panel_title, names) in zip(axes, panels):
            for name, values in usable.items():
                if name not in names:
                    ax.loglog(lengths, values, lw=0.8, color="0.75", zorder=1)
            for i, name in enumerate(names):
                ax.loglog(lengths, usable[name], marker="o", ms=3.5, lw=1.8, label=name,
                          zorder=2, **_style(i))
            ax.set_ylabel(ylabel)
            ax.minorticks_off()
            ax.set_xticks(lengths, [str(T) for T in lengths])
            if panel_title:
                ax.set_title(panel_title, loc="left")
            _legend_beside(ax)
        axes[-1].set_xlabel("sequence length T (grey: the other candidates)")
        if title:
            if panels[0][0]:
                fig.suptitle(title, x=0.02, ha="left")
            else:
                axes[0].set_title(title, loc="left")
        fig.tight_layout()
    return fig


def kernel_attention(logits, seq_len: int, clip: bool = True):
    """The weights a kernel alone puts on the keys of a ``seq_len``-token sequence: an
    array (T, T) whose row i belongs to query i.

    ``logits`` has 2ℓ+1 entries for the offsets r = j - i = -ℓ..ℓ.  With ``clip`` (composite
    attention's ``outside="clip"``) row i is the softmax over keys j of
    ``logits[clip(j - i) + ℓ]``: every key beyond the window reuses the edge entry, so an
    edge column stands for *every* offset beyond ±ℓ.  Without it (a zero-padded
    convolution) the kernel is the softmax over its 2ℓ+1 taps, placed around the diagonal
    as :func:`kernel_band` does: keys beyond the window get nothing, and near the ends of
    the sequence the taps that fall outside it are lost, so those rows sum to less than 1
    (they are not renormalised, exactly as the convolution's own ``mixing_matrix``)."""
    import numpy as np

    logits = np.asarray(logits, dtype=float)
    if not clip:
        taps = np.exp(logits - logits.max())
        return kernel_band(taps / taps.sum(), seq_len)
    max_rel = (len(logits) - 1) // 2
    offsets = np.arange(seq_len)[None, :] - np.arange(seq_len)[:, None]          # j - i
    scores = logits[np.clip(offsets, -max_rel, max_rel) + max_rel]
    scores = scores - scores.max(1, keepdims=True)
    weights = np.exp(scores)
    return weights / weights.sum(1, keepdims=True)


def kernel_band(weights, seq_len: int):
    """The (T, T) band of a zero-padded convolution with the 2ℓ+1 tap ``weights`` (offsets
    r = j - i = -ℓ..ℓ): row i holds ``weights[j - i + ℓ]`` at every key j inside the
    sequence.  Taps that fall outside it are dropped, not renormalised."""
    import numpy as np

    weights = np.asarray(weights, dtype=float)
    max_rel = (len(weights) - 1) // 2
    offsets = np.arange(seq_len)[None, :] - np.arange(seq_len)[:, None]          # j - i
    inside = np.abs(offsets) <= max_rel
    return np.where(inside, weights[np.clip(offsets, -max_rel, max_rel) + max_rel], 0.0)


def kernel_reach(logits, seq_len: int, clip: bool = True) -> dict:
    """How far a kernel reaches in a ``seq_len``-token sequence, averaged over the queries,
    with the weights of :func:`kernel_attention`: ``{"reach": mean over queries of
    sum_j w_ij |j - i|, "beyond": the weight on keys outside ±ℓ, "lost": the weight that
    falls outside the sequence}``.  Only a zero-padded convolution (``clip=False``) loses
    weight: its edge rows keep only the taps that land on real keys, and the lost taps
    reach nothing.  Zero logits give the uniform baseline, computed the same way."""
    import numpy as np

    weights = kernel_attention(logits, seq_len, clip)
    max_rel = (len(logits) - 1) // 2
    distance = np.abs(np.arange(seq_len)[None, :] - np.arange(seq_len)[:, None])
    return {"reach": float((weights * distance).sum(1).mean()),
            "beyond": float((weights * (distance > max_rel)).sum(1).mean()),
            "lost": 0.0 if clip else float((1.0 - weights.sum(1)).mean())}
