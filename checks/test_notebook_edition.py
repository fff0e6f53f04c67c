"""The notebook edition (``_ext/notebook_edition.py``) reads cleanly where MyST is unknown.

Every chapter of both variants is rendered the way classic Jupyter, Colab, VS Code and
nbviewer see it -- through nbconvert's HTML and Markdown exporters -- and the rendering
must show no MyST: no ``{role}`` or ``{directive}``, no ``(label)=`` target, no YAML
front matter, no directive options.  The student variant must hold no solution, and the
numbers (exercises, theorems, figures, equations) must be the book's.  The checks are
shown to fail on the chapters as they are stored (MyST), and the student check on the
full variant.
"""
import html
import importlib.util
import json
import re
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
SITE = ROOT / "_build" / "html"
spec = importlib.util.spec_from_file_location("notebook_edition", ROOT / "_ext" / "notebook_edition.py")
edition = importlib.util.module_from_spec(spec)
sys.modules[spec.name] = edition            # its dataclasses look their module up
spec.loader.exec_module(edition)

MARKDOWN_LEFTOVERS = {
    "a MyST role": re.compile(r"\{[\w:.-]+\}`"),
    "a MyST directive": re.compile(r"^\s*(?:`{3,}|:{3,})\s*\{[\w:.-]+\}", re.M),
    "a (label)= target": re.compile(r"^\s*\([^()\s]+\)=\s*$", re.M),
    "YAML front matter": re.compile(r"^---\s*\n(?:\s*[\w-]+:.*\n)+---\s*$", re.M),
    "a directive option": re.compile(r"^:(?:label|class|name|alt|width|header-rows):", re.M),
    "an undefined book macro": re.compile(r"\\(?:softmax|clip|R)(?![A-Za-z])"),
}
HTML_LEFTOVERS = {
    "a MyST role": re.compile(r"\{[\w:.-]+\}(?:<code>|`)"),
    "a MyST directive": re.compile(r"language-\{|<pre><code>\{[\w:.-]+\}|^\s*:{3,}\{", re.M),
    "a (label)= target": re.compile(r"<p>\s*\([^()\s<]+\)=\s*</p>"),
    "YAML front matter": re.compile(r"<h2[^>]*>\s*math:"),
    "a directive option": re.compile(r"<p>:(?:label|class|name|alt):"),
    "an undefined book macro": re.compile(r"\\(?:softmax|clip|R)(?![A-Za-z])"),
}


def markdown_text(nb) -> str:
    """The Markdown exporter's output for the notebook's Markdown cells."""
    from nbconvert import MarkdownExporter

    only_markdown = nbformat.from_dict(dict(nb, cells=[c for c in nb["cells"]
                                                         if c["cell_type"] == "markdown"]))
    body, _ = MarkdownExporter().from_notebook_node(only_markdown)
    return body


def html_text(nb) -> str:
    """The HTML exporter's rendering of the Markdown cells (classic Jupyter's renderer)."""
    from nbconvert import HTMLExporter

    only_markdown = nbformat.from_dict(dict(nb, cells=[c for c in nb["cells"]
                                                         if c["cell_type"] == "markdown"]))
    body, _ = HTMLExporter().from_notebook_node(only_markdown)
    start = body.find("<main>")
    return body[start:] if start >= 0 else body


def leftovers(nb) -> list[str]:
    found = []
    for where, rendered, patterns in (("markdown", markdown_text(nb), MARKDOWN_LEFTOVERS),
                                      ("html", html_text(nb), HTML_LEFTOVERS)):
        for what, pattern in patterns.items():
            for match in pattern.finditer(rendered):
                start = max(match.start() - 40, 0)
                found.append(f"[{where}] {what}: ..." + rendered[start:match.end() + 40]
                             .replace("\n", " ") + "...")
    return found


def solution_texts(source_nb) -> list[str]:
    """A distinctive line of prose from each solution of a stored chapter."""
    texts = []
    for cell in source_nb["cells"]:
        if cell["cell_type"] != "markdown":
            continue
        source = edition.text(cell["source"])
        for match in re.finditer(r"^(`{3,}|:{3,})\{solution\}[^\n]*\n(.*?)^\1\s*$", source,
                                 re.M | re.S):
            prose = [line for line in match[2].splitlines()
                     if len(line) > 30 and not line.startswith((":", "```", " ", "$"))
                     and "\\" not in line and "`" not in line and "$" not in line]
            if prose:
                texts.append(prose[0].strip())
    return texts


def solutions_shown(rendered_text: str, source_nb) -> list[str]:
    text_ = html.unescape(re.sub(r"<[^>]+>", " ", rendered_text))
    text_ = " ".join(text_.split())
    found = [f"solution text: {t[:60]!r}" for t in solution_texts(source_nb)
             if " ".join(t.split()) in text_]
    if "Solution to" in text_:
        found.append("a 'Solution to' heading")
    return found


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    out = tmp_path_factory.mktemp("notebooks")
    edition.write_edition(out)
    return out


CHAPTERS = sorted(p.name for p in (ROOT / "book").glob("*.ipynb"))


@pytest.mark.parametrize("variant", ["full", "student"])
@pytest.mark.parametrize("name", CHAPTERS)
def test_a_chapter_reads_cleanly_without_myst(built, name, variant):
    path = built / name if variant == "full" else built / "student" / name
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    found = leftovers(nb)
    assert not found, f"{variant}/{name}:\n  " + "\n  ".join(found[:12])


@pytest.mark.parametrize("name", CHAPTERS)
def test_the_student_variant_has_no_solution(built, name):
    source = json.loads((ROOT / "book" / name).read_text())
    nb = nbformat.read(built / "student" / name, as_version=4)
    found = solutions_shown(html_text(nb), source)
    assert not found, f"student/{name}:\n  " + "\n  ".join(found)


def test_the_full_variant_folds_every_solution(built):
    for name in CHAPTERS:
        source = json.loads((ROOT / "book" / name).read_text())
        nb = nbformat.read(built / name, as_version=4)
        markdown = "\n".join(edition.text(c["source"]) for c in nb.cells if c.cell_type == "markdown")
        n_solutions = sum(len(re.findall(r"\{solution\}", edition.text(c["source"])))
                          for c in source["cells"] if c["cell_type"] == "markdown")
        assert markdown.count("<details>\n<summary>Solution to Exercise ") == n_solutions, name
        assert markdown.count("</details>") == n_solutions, name


def test_the_stored_chapters_fail_these_checks():
    """Planted errors: the MyST chapters themselves, and the full variant as a student's."""
    stored = nbformat.read(ROOT / "book" / "03_equivalence.ipynb", as_version=4)
    found = " ".join(leftovers(stored))
    for what in ("a MyST role", "a MyST directive", "a (label)= target", "YAML front matter",
                 "a directive option"):
        assert what in found, f"the check misses {what} in the stored chapter"


def test_a_full_variant_fails_the_student_check(built):
    source = json.loads((ROOT / "book" / "03_equivalence.ipynb").read_text())
    full = nbformat.read(built / "03_equivalence.ipynb", as_version=4)
    assert solution_texts(source), "no solution prose found to look for"
    assert solutions_shown(html_text(full), source)


def test_citations_and_references_read_as_text(built):
    nb = nbformat.read(built / "03_equivalence.ipynb", as_version=4)
    markdown = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    assert "Shaw et al. (2018)" in markdown and "(Wu et al. 2019)" in markdown
    assert "*Attention as a mixing matrix* (Chapter 1)" in markdown
    assert "**Theorem 3.1 (" in markdown and "**Exercise 3.1 (" in markdown
    assert nb.cells[-1].source.startswith("## References")
    assert "doi.org/10.18653/v1/2021.acl-long.333" in nb.cells[-1].source


def numbers_in(text_: str, word: str, chapter: int) -> list[str]:
    return sorted(set(re.findall(rf"{word} ({chapter}\.\d+)", text_)), key=lambda n: int(n.split(".")[1]))


@pytest.mark.parametrize("name", CHAPTERS)
def test_numbers_are_the_books(built, name):
    """Exercise, theorem, figure and equation numbers as on the built site (needs
    ``bash scripts/book``; CI builds the book before the tests)."""
    page = SITE / "book" / name.replace(".ipynb", ".html")
    if not page.exists():
        pytest.skip("the book is not built; run `bash scripts/book` first")
    chapter = edition.load_book().numbers[f"book/{name[:-6]}"]
    site = html.unescape(re.sub(r"<[^>]+>", " ", page.read_text()))
    nb = nbformat.read(built / name, as_version=4)
    markdown = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    for word in ("Exercise", "Theorem", "Figure"):
        ours = numbers_in(" ".join(re.findall(rf"\*\*{word} [\d.]+", markdown)), word, chapter)
        assert ours == numbers_in(site, word, chapter), f"{name}: {word} numbers differ"
    ours = sorted(set(re.findall(rf"\\tag\{{({chapter}\.\d+)\}}", markdown)))
    assert ours == sorted(set(re.findall(rf"\(({chapter}\.\d+)\)", site))), f"{name}: equations differ"


def chapter_buttons(page: Path) -> dict:
    text = page.read_text()
    download = re.findall(r'href="([^"]+\.ipynb)"[^>]*>\s*(?:<[^>]+>\s*)*[^<]*', text)
    colab = re.findall(r'href="(https://colab\.research\.google\.com/[^"]+)"', text)
    return {"download": [d for d in download if "colab" not in d], "colab": colab}


@pytest.mark.parametrize("name", CHAPTERS)
def test_the_site_gives_the_notebook_edition(name):
    """A chapter's .ipynb download is its notebook edition, in the site, and its Colab
    button opens the same file on the notebooks branch (needs ``bash scripts/book``)."""
    page = SITE / "book" / name.replace(".ipynb", ".html")
    if not page.exists():
        pytest.skip("the book is not built; run `bash scripts/book` first")
    buttons = chapter_buttons(page)
    assert buttons["download"] == [f"../notebooks/{name}"], buttons["download"]
    assert (SITE / "notebooks" / name).exists() and (SITE / "notebooks" / "student" / name).exists()
    assert len(buttons["colab"]) == 1 and buttons["colab"][0].endswith(f"/blob/notebooks/{name}")
    stored = json.loads((SITE / "notebooks" / name).read_text())
    markdown = "\n".join(edition.text(c["source"]) for c in stored["cells"] if c["cell_type"] == "markdown")
    assert not MARKDOWN_LEFTOVERS["a MyST role"].search(markdown), "the site's copy is not the edition"
