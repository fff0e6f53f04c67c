"""The site a fork publishes points to the fork, and every page loads its scripts once.

A tiny book with the project's Sphinx extension (_ext/book_site.py) and the repository
settings of _config.yml is built twice: with COMPATTN_REPOSITORY unset (the address of
_config.yml) and set to a fork.  No browser needed (checks/test_rendered_book.py checks the
real book's console).
"""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
JUPYTER_BOOK = Path(sys.executable).parent / "jupyter-book"
FORK = "https://github.com/someone/compattn-fork"


def build(tmp_path: Path, repository: str | None) -> Path:
    real = yaml.safe_load((ROOT / "_config.yml").read_text())
    config = {"title": "probe", "author": "probe", "only_build_toc_files": True,
              "exclude_patterns": ["_build", ".*"], "execute": {"execute_notebooks": "off"},
              "repository": real["repository"], "launch_buttons": real["launch_buttons"],
              "html": real["html"],
              "sphinx": {"local_extensions": {"book_site": "_ext"}}}
    (tmp_path / "_config.yml").write_text(yaml.safe_dump(config))
    (tmp_path / "_toc.yml").write_text("format: jb-book\nroot: intro\nchapters:\n  - file: chapter\n")
    shutil.copytree(ROOT / "_ext", tmp_path / "_ext", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(ROOT / "_static", tmp_path / "_static")
    url = real["repository"]["url"]
    (tmp_path / "intro.md").write_text(f"# Intro\n\n```sh\ngit clone {url}\n```\n")
    install = f'get_ipython().run_line_magic("pip", "install -q git+{url}")'
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# Chapter\n\nText."),
                                         nbformat.v4.new_code_cell(install, metadata={"tags": ["remove-cell"]}),
                                         nbformat.v4.new_code_cell("print(1)")])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, tmp_path / "chapter.ipynb")
    env = {k: v for k, v in os.environ.items() if k != "COMPATTN_REPOSITORY"}
    if repository:
        env["COMPATTN_REPOSITORY"] = repository
    result = subprocess.run([str(JUPYTER_BOOK), "build", "-W", "-n", "--keep-going", str(tmp_path)],
                            capture_output=True, text=True, timeout=300, env=env)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    return tmp_path / "_build" / "html"


@pytest.fixture(scope="module")
def default_site(tmp_path_factory):
    return build(tmp_path_factory.mktemp("default"), None)


@pytest.fixture(scope="module")
def fork_site(tmp_path_factory):
    return build(tmp_path_factory.mktemp("fork"), FORK)


def test_every_script_is_loaded_once(default_site):
    page = (default_site / "chapter.html").read_text()
    assert page.count("const THEBE_JS_URL") == 1, "the thebe configuration script is included twice"


def test_the_default_site_points_at_the_configured_repository(default_site):
    url = yaml.safe_load((ROOT / "_config.yml").read_text())["repository"]["url"]
    page = (default_site / "chapter.html").read_text()
    assert f'href="{url}"' in page and "colab.research.google.com/github/" + url.split("github.com/")[1] in page


def test_a_fork_site_points_at_the_fork(fork_site):
    url = yaml.safe_load((ROOT / "_config.yml").read_text())["repository"]["url"]
    page = (fork_site / "chapter.html").read_text()
    assert f'href="{FORK}"' in page, "the repository button does not point to the fork"
    assert f"{FORK}/issues/new" in page, "the issues button does not point to the fork"
    assert "colab.research.google.com/github/someone/compattn-fork/blob/" in page
    source = json.loads((fork_site / "_sources" / "chapter.ipynb").read_text())
    assert f"git+{FORK}" in "".join(source["cells"][1]["source"]), "the install cell still names the original"
    assert FORK in (fork_site / "intro.html").read_text()
    leftover = [p.name for p in fork_site.rglob("*.html") if url + '"' in p.read_text() or url + "/" in p.read_text()]
    assert not leftover, f"pages still name {url}: {leftover}"


def test_the_site_has_a_favicon_and_a_default_theme_mode(default_site):
    page = (default_site / "chapter.html").read_text()
    assert 'rel="icon" href="_static/favicon.svg"' in page and (default_site / "_static" / "favicon.svg").exists()
    assert 'localStorage.getItem("mode") || "auto"' in page
