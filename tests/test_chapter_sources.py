"""What the chapters' sources must hold before they are rendered: the shared first cells,
code lines of at most 88 characters, nbval markers as cell tags (never in the source), and
one letter per meaning (the window is \\ell; k is a key)."""
import importlib.util
import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = sorted((ROOT / "book").glob("*.ipynb"))
MAX_LINE = 88

spec = importlib.util.spec_from_file_location("setup_cells", ROOT / "scripts" / "setup_cells.py")
setup_cells = importlib.util.module_from_spec(spec)
spec.loader.exec_module(setup_cells)


def cells(path):
    nb = json.loads(path.read_text(encoding="utf-8"))
    for index, cell in enumerate(nb["cells"]):
        source = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
        yield index, cell, source


def long_lines(path) -> list[str]:
    return [f"{path.name} cell {index} line {number} ({len(line)} chars): {line}"
            for index, cell, source in cells(path) if cell["cell_type"] == "code"
            for number, line in enumerate(source.splitlines(), 1) if len(line) > MAX_LINE]


def test_every_code_line_fits_88_characters():
    offending = [hit for path in CHAPTERS for hit in long_lines(path)]
    assert not offending, (f"{len(offending)} code lines are longer than {MAX_LINE} characters "
                           "(they run past the page's column):\n" + "\n".join(offending))


def test_a_planted_long_line_is_caught(tmp_path):
    nb = {"cells": [{"cell_type": "code", "metadata": {}, "outputs": [], "execution_count": 1,
                     "source": ["short = 1\n", "x = " + "1 + " * 30 + "1"]}],
          "metadata": {}, "nbformat": 4, "nbformat_minor": 4}
    path = tmp_path / "planted.ipynb"
    path.write_text(json.dumps(nb))
    hits = long_lines(path)
    assert len(hits) == 1 and "cell 0 line 2" in hits[0]


def test_nbval_markers_are_tags_not_comments():
    offending = [f"{path.name} cell {index}: {line.strip()}"
                 for path in CHAPTERS for index, cell, source in cells(path)
                 for line in source.splitlines() if "NBVAL_" in line]
    assert not offending, ("nbval markers belong in the cell's tags (nbval-ignore-output, "
                           "nbval-skip), not in its source:\n" + "\n".join(offending))


@pytest.mark.parametrize("chapter", CHAPTERS, ids=[p.stem for p in CHAPTERS])
def test_the_first_cells_are_the_shared_ones(chapter):
    problems = setup_cells.differences(json.loads(chapter.read_text(encoding="utf-8")))
    assert not problems, f"{chapter.name}: {'; '.join(problems)} (run bash scripts/sync_setup_cells)"


# --- one symbol per meaning: k is a key, the window is \ell -------------------------------------
PAGES = CHAPTERS + sorted((ROOT / "book").glob("*.md"))
MATH = re.compile(r"\$\$.*?\$\$|\$[^$]+?\$", re.S)
CODE_BLOCK = re.compile(r"^```(?:python|\{code-cell\})[^\n]*\n.*?^```[ ]*$", re.S | re.M)
BARE_K = re.compile(r"(?<![A-Za-z\\])k(?![A-Za-z_^'])")     # not k_j, k^s, W_{k,r}'s k, \kappa
KEY_ONLY = {"$k$", "$q, k, v$", "$q \\cdot k$", "$q = k = 0$",
            "$q, k \\leftarrow [\\mathrm{SepConv}(x);\\ xW]$", "$K^r = PW_{k,r}$"}   # keys


def bare_k(text: str) -> list[str]:
    """Math in ``text`` that uses a bare k other than for the keys (e.g. $2k+1$, $\\pm k$)."""
    return [m.group(0) for m in MATH.finditer(CODE_BLOCK.sub("", text))
            if BARE_K.search(m.group(0)) and m.group(0) not in KEY_ONLY]


def prose(path):
    if path.suffix == ".md":
        yield 0, path.read_text(encoding="utf-8")
        return
    for index, cell, source in cells(path):
        if cell["cell_type"] == "markdown":
            yield index, source
        for output in cell.get("outputs", []):        # tables printed as Markdown
            markdown = output.get("data", {}).get("text/markdown")
            if markdown:
                yield index, "".join(markdown)


def test_the_window_is_ell_and_k_is_only_a_key():
    offending = [f"{path.name} cell {index}: {hit}" for path in PAGES
                 for index, text in prose(path) for hit in bare_k(text)]
    assert not offending, ("k is the keys' letter; write the window as \\ell:\n"
                           + "\n".join(offending))


def test_the_registry_formulas_use_ell_for_the_window():
    from compattn import registry

    offending = [f"{name}: {e.formula} / {e.cost}" for name in registry.variants()
                 for e in [registry.entry(name)]
                 if bare_k(f"${e.formula}$") or re.search(r"O\([^)]*\bk\b", e.cost)]
    assert not offending, "\n".join(offending)


def test_a_planted_window_k_is_caught():
    assert bare_k("a kernel of $2k+1$ taps, clipped at $\\pm k$") == ["$2k+1$", "$\\pm k$"]
    assert bare_k("the keys $k_j$, $k^s_i$ and $K$; the window $\\ell$; $q, k, v$") == []
