"""The book build must fail loudly: a tiny book in a temp dir, broken in one way at a time.

Without ``-W`` Jupyter Book exits 0 even when a notebook raises; these tests hold the
project's build command (``jupyter-book build -W -n --keep-going``) to failing.
"""
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

JUPYTER_BOOK = Path(sys.executable).parent / "jupyter-book"
CONFIG = """title: probe
author: probe
only_build_toc_files: true
exclude_patterns: [_build, ".*"]
execute:
  execute_notebooks: force
bibtex_bibfiles: [references.bib]
sphinx:
  config:
    bibtex_reference_style: author_year
"""
BIB = "@misc{known2020, title={A known entry}, author={Someone, A.}, year={2020}}\n"


def build(tmp_path: Path, page: str, code: str) -> subprocess.CompletedProcess:
    (tmp_path / "_config.yml").write_text(CONFIG)
    (tmp_path / "_toc.yml").write_text("format: jb-book\nroot: intro\nchapters:\n  - file: chapter\n")
    (tmp_path / "references.bib").write_text(BIB)
    (tmp_path / "intro.md").write_text("# Intro\n\n" + page + "\n\n```{bibliography}\n```\n")
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# Chapter\n\n(sec-chapter)=\n## Part"),
                                         nbformat.v4.new_code_cell(code)])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, tmp_path / "chapter.ipynb")
    return subprocess.run([str(JUPYTER_BOOK), "build", "-W", "-n", "--keep-going", str(tmp_path)],
                          capture_output=True, text=True, timeout=300)


GOOD_PAGE = "See {ref}`sec-chapter` and {cite}`known2020`."


def test_a_correct_book_builds(tmp_path):
    result = build(tmp_path, GOOD_PAGE, "print(1 + 1)")
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]


@pytest.mark.parametrize("page, code, why", [
    (GOOD_PAGE, "raise RuntimeError('boom')", "Executing notebook failed"),
    ("See {ref}`sec-missing` and {cite}`known2020`.", "print(1)", "undefined label"),
    ("See {ref}`sec-chapter` and {cite}`unknown1999`.", "print(1)", "could not find bibtex key"),
], ids=["notebook-raises", "broken-cross-reference", "broken-citation"])
def test_a_broken_book_fails(tmp_path, page, code, why):
    result = build(tmp_path, page, code)
    assert result.returncode != 0, f"the build succeeded although it should fail with {why!r}"
    assert why in result.stdout + result.stderr
