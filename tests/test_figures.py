"""The line plots of compattn.plots read on a phone, and `show` keeps one output.

Each plot function draws synthetic data the size of the book's largest figure (13
kernels, 17 learning curves, 13 highlighted benchmark candidates) and must give:

* text a reader can read at 390 px: the figure, scaled to a 358-px column, has no letter
  smaller than 8 px;
* at most ``MAX_LINES`` coloured lines in a panel;
* every legend outside its panel's data area, and axis labels on every panel.

Each check returns problems, and one badly drawn figure (tiny text, 13 lines, legend on
the data) must fail every one of them.
"""
import math

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from compattn import plots  # noqa: E402

COLUMN_PX = 358                  # the text column of a 390-px phone
SMALLEST_PX = 8.0


def fig_pixels(fig) -> float:
    """Width of the PNG a notebook stores (the inline backend crops to the drawing)."""
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    return fig.get_tightbbox(renderer).width * fig.dpi


def check_legible(fig) -> list[str]:
    scale = min(1.0, COLUMN_PX / fig_pixels(fig))
    problems = []
    for text in fig.findobj(matplotlib.text.Text):
        if not text.get_visible() or not text.get_text().strip():
            continue
        shown = text.get_fontsize() * fig.dpi / 72 * scale
        if shown < SMALLEST_PX:
            problems.append(f"{text.get_text()[:30]!r} is {shown:.1f} px tall at {COLUMN_PX} px")
    return problems


def coloured_lines(ax) -> list:
    grey = {matplotlib.colors.to_hex(c) for c in ("0.75", "0.7", "0.6", "grey", "gray")}
    return [line for line in ax.get_lines() if not line.get_label().startswith("_")
            and matplotlib.colors.to_hex(line.get_color()) not in grey]


def check_lines(fig) -> list[str]:
    return [f"panel {i} has {len(coloured_lines(ax))} coloured lines (at most {plots.MAX_LINES})"
            for i, ax in enumerate(fig.axes) if len(coloured_lines(ax)) > plots.MAX_LINES]


def check_legends(fig) -> list[str]:
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    problems = []
    for i, ax in enumerate(fig.axes):
        legend = ax.get_legend()
        if legend is None:
            if len(coloured_lines(ax)) > 1:
                problems.append(f"panel {i}: several lines and no legend")
            continue
        box = legend.get_window_extent(renderer)
        for j, other in enumerate(fig.axes):
            if box.overlaps(other.get_window_extent(renderer)):
                problems.append(f"panel {i}: the legend lies on the data of panel {j}")
    return problems


def check_labels(fig) -> list[str]:
    problems = [f"panel {i} has no y label" for i, ax in enumerate(fig.axes) if not ax.get_ylabel()]
    if fig.axes and not fig.axes[-1].get_xlabel():
        problems.append("the bottom panel has no x label")
    return problems


CHECKS = (check_legible, check_lines, check_legends, check_labels)


def kernels(n):
    r = np.arange(-8, 9)
    return {f"head {h}, m = {2.0 ** -(h + 1):.4f}": np.exp(-abs(r) * 2.0 ** -(h + 1)) for h in range(n)}


def curves(n):
    x = np.arange(0, 2000, 100)
    return {f"variant_{i:02d}": (x, 5 + np.exp(-x / (300 + 20 * i))) for i in range(n)}


def scaling(n):
    """Candidates named as long as the book's longest, hf_bert_relative_key_query."""
    lengths = [128, 512, 1024, 2048]
    names = [f"hf_bert_relative_key_query_{i:02d}" for i in range(n + 4)]
    results = {name: {str(T): {"median_ms": (1 + i / 10) * T ** 1.5 / 100} for T in lengths}
               for i, name in enumerate(names)}
    return results, lengths, names[:n]


FIGURES = {
    "kernels-4": lambda: plots.plot_kernels(kernels(4), offsets=range(-8, 9), title="ALiBi kernels"),
    "kernels-13": lambda: plots.plot_kernels(kernels(13), offsets=range(-8, 9)),
    "curves-2": lambda: plots.plot_curves(curves(2), ylabel="masked-LM cross-entropy", title="pre-training"),
    "curves-17": lambda: plots.plot_curves(curves(17), ylabel="dev masked-LM loss", title="pilot"),
    "curves-groups": lambda: plots.plot_curves(curves(6), groups={"first": ["variant_00", "variant_01"],
                                                                  "second": ["variant_02", "variant_03"]}),
    "scaling-13": lambda: plots.plot_scaling(*scaling(13)[:2], highlight=scaling(13)[2], title="fwd + bwd"),
    "scaling-groups": lambda: plots.plot_scaling(*scaling(9)[:2], groups={
        "ours": scaling(9)[2][:2], "theirs": scaling(9)[2][2:4]}),
}


@pytest.mark.parametrize("name", FIGURES)
def test_a_figure_reads_on_a_phone(name):
    fig = FIGURES[name]()
    try:
        problems = [p for check in CHECKS for p in check(fig)]
        assert not problems, f"{name}:\n" + "\n".join(problems[:10])
    finally:
        plt.close(fig)


def test_long_labels_are_broken():
    assert plots.wrap_label("hf_bert_relative_key_query") == "hf_bert_relative_\nkey_query"
    assert plots.wrap_label("head 0, m = 0.5000") == "head 0, m =\n0.5000"
    assert plots.wrap_label("none") == "none"


def test_many_lines_are_split_evenly():
    assert [len(g) for g in plots.panels_of(list(range(17)))] == [6, 6, 5]
    assert [len(g) for g in plots.panels_of(list(range(8)))] == [8]
    fig = plots.plot_curves(curves(17))
    assert len(fig.axes) == math.ceil(17 / plots.MAX_LINES)
    assert sum(len(coloured_lines(ax)) for ax in fig.axes) == 17
    plt.close(fig)


def test_a_badly_drawn_figure_fails_every_check():
    fig, ax = plt.subplots(figsize=(10, 4))
    for name, (x, y) in curves(13).items():
        ax.plot(x, y, label=name)
    ax.legend(fontsize=5, loc="upper right")
    found = {check.__name__: check(fig) for check in CHECKS}
    plt.close(fig)
    assert all(found.values()), {k: v for k, v in found.items() if not v}


def test_show_keeps_one_output_for_glue(monkeypatch):
    """`show` displays once, marked with its name for {glue:figure} (myst-nb installed)."""
    shown = []
    import IPython.display

    monkeypatch.setattr(IPython.display, "display", lambda *a, **k: shown.append((a, k)))
    import myst_nb.ext.glue as glue_module

    monkeypatch.setattr(glue_module, "ipy_display", lambda data, **k: shown.append((data, k)))
    from IPython.core.interactiveshell import InteractiveShell
    from matplotlib_inline.backend_inline import set_matplotlib_formats

    InteractiveShell.instance()          # a kernel's display formatters, PNG for figures
    try:
        set_matplotlib_formats("png")
        fig = plots.plot_kernels(kernels(2))
        plots.show(fig, "fig-probe")
    finally:
        InteractiveShell.clear_instance()
    assert len(shown) == 1
    data, kwargs = shown[0]
    assert "image/png" in data, "the figure is not displayed as PNG"
    assert kwargs["metadata"]["scrapbook"] == {"name": "fig-probe", "mime_prefix": ""}
