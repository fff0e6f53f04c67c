"""The PDFs match the website: ``bash scripts/pdf`` and ``bash scripts/book`` first.

The text of each PDF (``pdftotext``) is compared with the built site: the numbered
chapters with their numbers and titles, in order; the Parts; every theorem and exercise
with its number and title.  The book has the solutions in an appendix and none under the
exercises; the student edition has no solution at all.  The LaTeX source has no proof box
with an empty title bar, and the LaTeX log no line that runs far past the page (a wide
SymPy output that was not shrunk).  Every comparison is a function returning problems, and
the last tests feed each one a planted error.

Where the PDFs, the site or ``pdftotext`` are missing the tests are skipped with the
reason -- except in CI (``CI`` set), where ``.ci/run`` builds both before the tests.
"""
import html
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
LATEX = ROOT / "_build" / "latex"
SITE = ROOT / "_build" / "html"
IN_CI = bool(os.environ.get("CI"))
WIDEST_OVERFLOW_PT = 30          # a line may stick out this far (a long identifier), not more


def unavailable(reason):
    if IN_CI:
        pytest.fail(f"{reason} (never skipped in CI)")
    pytest.skip(reason)


def pdf_text(name: str) -> str:
    path = LATEX / name
    if not shutil.which("pdftotext"):
        unavailable("pdftotext is not installed (Debian: poppler-utils)")
    if not path.exists():
        unavailable(f"{path.relative_to(ROOT)} is not built; run `bash scripts/pdf`")
    return subprocess.run(["pdftotext", "-layout", str(path), "-"], capture_output=True, text=True,
                          check=True).stdout


def flat(text: str) -> str:
    """Text with hyphenation at line ends undone and all white space single."""
    text = re.sub(r"(\w)-\n\s*(\w)", r"\1\2", text)
    for curly, straight in (("’", "'"), ("‘", "'"), ("“", '"'), ("”", '"')):
        text = text.replace(curly, straight)
    return " ".join(text.split())


# ---- the website ----

def site_chapters() -> list[tuple[int, str]]:
    page = SITE / "book" / "intro.html"
    if not page.exists():
        unavailable("the book is not built; run `bash scripts/book`")
    links = re.findall(r'<li class="toctree-l1[^>]*><a class="reference internal" href="[^"]*">([^<]*)</a>',
                       page.read_text())
    return [(int(m[1]), html.unescape(m[2]).strip()) for m in
            (re.match(r"(\d+)\.\s+(.*)", link) for link in links) if m]


def site_parts() -> list[str]:
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    return [re.sub(r"^Part\s+[IVX]+:\s*", "", p["caption"]) for p in toc["parts"] if p.get("numbered")]


def site_numbered(kind: str) -> dict[str, str]:
    """{"3.1": "Relative key embeddings are ..."} for every Theorem or Exercise on the site."""
    found = {}
    for page in sorted((SITE / "book").glob("[0-9]*.html")):
        text = html.unescape(re.sub(r"<[^>]+>", "", page.read_text()))
        for number, title in re.findall(rf"^\s*{kind} (\d+\.\d+)\s+\((.*)\)\s*$", text, re.M):
            found[number] = " ".join(title.split())
    return found


# ---- the comparisons ----

def toc_chapters(text: str) -> list[tuple[int, str]]:
    """Numbered chapter lines of the PDF's table of contents: "3 Relative ...  25"."""
    toc = text[:text.find("About this book", text.find("About this book") + 1)] \
        if text.count("About this book") > 1 else text[:20000]
    found = []
    for line in toc.splitlines():
        m = re.match(r"^\s*(\d+)\s{1,3}(\S.*?)\s*(?:\. ?)*\s+\d+\s*$", line)
        if m and not re.match(r"^\s*\d+\.\d+", line):
            found.append((int(m[1]), m[2].strip()))
    return found


def compare_chapters(site: list[tuple[int, str]], text: str) -> list[str]:
    pdf = toc_chapters(text)
    problems = []
    if [n for n, _ in pdf] != [n for n, _ in site]:
        problems.append(f"chapter numbers differ: PDF {[n for n, _ in pdf]}, site {[n for n, _ in site]}")
    for (n_site, title_site), (n_pdf, title_pdf) in zip(site, pdf):
        if flat(title_site) != flat(title_pdf) or n_site != n_pdf:
            problems.append(f"chapter {n_site} {title_site!r} is {n_pdf} {title_pdf!r} in the PDF")
    return problems


def compare_parts(parts: list[str], text: str) -> list[str]:
    romans = ["I", "II", "III", "IV", "V", "VI"]
    return [f"Part {romans[i]} ({part}) is missing" for i, part in enumerate(parts)
            if not re.search(rf"^\s*{romans[i]}\s+{re.escape(part)}\s+\d+\s*$", text, re.M)]


def compare_numbered(kind: str, site: dict[str, str], text: str) -> list[str]:
    body = flat(text)
    return [f"{kind} {n} ({title}) is not in the PDF" for n, title in site.items()
            if f"{kind} {n} ({flat(title)})" not in body]


def solution_texts() -> list[str]:
    """A line of prose from each solution of the chapters."""
    found = []
    for path in sorted((ROOT / "book").glob("*.ipynb")):
        for cell in json.loads(path.read_text())["cells"]:
            source = "".join(cell["source"])
            for m in re.finditer(r"^(`{3,}|:{3,})\{solution\}[^\n]*\n(.*?)^\1\s*$", source, re.M | re.S):
                prose = [line for line in m[2].splitlines() if len(line) > 40 and not line.startswith(
                    (":", "`", " ", "$", "-", "*", "#")) and not re.search(r"[\\`$_*{}|]", line)]
                if prose:
                    found.append(flat(prose[0])[:60])
    return found


def check_solutions(text: str, student: bool) -> list[str]:
    body = flat(text)
    start = re.search(r"APPENDIX A SOLUTIONS TO THE EXERCISES", body)     # the chapter's opening page
    appendix = start.start() if start else -1
    problems = []
    shown = [s for s in solution_texts() if s in body]
    if student:
        problems += [f"solution text in the student PDF: {s!r}" for s in shown]
        if "Solution to Exercise" in body:
            problems.append("a 'Solution to Exercise' heading in the student PDF")
    else:
        if appendix < 0:
            problems.append("no appendix 'Solutions to the exercises'")
        early = [s for s in shown if body.find(s) < appendix]
        problems += [f"a solution printed before the appendix: {s!r}" for s in early]
        missing = len(solution_texts()) - len(shown)
        if missing:
            problems.append(f"{missing} solutions are missing from the appendix")
    return problems


def empty_title_boxes(tex: str) -> list[str]:
    return [tex[m.start():m.start() + 80] for m in
            re.finditer(r"\\begin\{sphinxadmonition\}\{note\}\s*(?:\n\s*)*\\sphinxAtStartPar", tex)]


def wide_lines(log: str) -> list[str]:
    return [m[0] for m in re.finditer(r"Overfull \\hbox \((\d+(?:\.\d+)?)pt too wide\)[^\n]*", log)
            if float(m[1]) > WIDEST_OVERFLOW_PT]


# ---- the tests ----

@pytest.fixture(scope="module")
def full():
    return pdf_text("compattn.pdf")


@pytest.fixture(scope="module")
def student():
    return pdf_text("compattn-student.pdf")


@pytest.mark.parametrize("which", ["full", "student"])
def test_chapters_and_parts_are_the_sites(which, full, student):
    text = full if which == "full" else student
    chapters = site_chapters()
    assert len(chapters) >= 10, chapters
    problems = compare_chapters(chapters, text) + compare_parts(site_parts(), text)
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("which", ["full", "student"])
@pytest.mark.parametrize("kind", ["Theorem", "Exercise"])
def test_theorems_and_exercises_have_the_sites_numbers(which, kind, full, student):
    site = site_numbered(kind)
    assert site, f"no {kind} found on the site"
    problems = compare_numbered(kind, site, full if which == "full" else student)
    assert not problems, "\n".join(problems[:10])


def test_the_book_has_its_solutions_in_an_appendix(full):
    problems = check_solutions(full, student=False)
    assert not problems, "\n".join(problems[:10])


def test_the_student_edition_has_no_solutions(student):
    problems = check_solutions(student, student=True)
    assert not problems, "\n".join(problems[:10])


@pytest.mark.parametrize("name", ["compattn", "compattn-student"])
def test_no_empty_boxes_and_nothing_past_the_page(name, full, student):
    tex, log = LATEX / f"{name}.tex", LATEX / f"{name}.log"
    assert not empty_title_boxes(tex.read_text()), empty_title_boxes(tex.read_text())[:3]
    assert not wide_lines(log.read_text(errors="replace")), wide_lines(log.read_text(errors="replace"))[:5]


def test_planted_errors_are_caught(full, student):
    chapters = site_chapters()
    shifted = full.replace("\n3 Relative positions", "\n9 Relative positions", 1)
    assert compare_chapters(chapters, shifted)
    assert compare_parts(site_parts(), full.replace("II    The library", "The library"))
    site = site_numbered("Theorem")
    renumbered = full.replace("Theorem 3.1 (", "Theorem 9.1 (")
    assert compare_numbered("Theorem", site, renumbered)
    assert check_solutions(full, student=True), "the full PDF passes as a student edition"
    assert check_solutions(student, student=False), "the student PDF passes as the book"
    assert empty_title_boxes("\\begin{sphinxadmonition}{note}\n\n\\sphinxAtStartPar\nProof. x")
    assert wide_lines("Overfull \\hbox (412.3pt too wide) in paragraph at lines 3--4")
