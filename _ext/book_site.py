"""The published site: its repository address, its scripts and its favicon.

* **One repository address.** ``repository.url`` in ``_config.yml`` is the default; the
  environment variable ``COMPATTN_REPOSITORY`` (``https://github.com/OWNER/NAME``, set by
  ``scripts/book`` and, in the publishing workflow, from the repository that runs it)
  overrides it.  The repository, issues and Colab buttons are built from it, and after the
  build every copy of the default address in the pages and in the downloadable notebooks
  (the Colab install cell, the intro's ``git clone``) is rewritten to it, so a fork's site
  points to the fork.
* **No duplicate scripts.** sphinx-thebe registers an inline script
  (``const THEBE_JS_URL = ...``) after the HTML builder started; Sphinx then lists it twice
  (once with ``filename=None``, once with ``''``), and the second copy throws
  ``SyntaxError: Identifier 'THEBE_JS_URL' has already been declared`` on every page.
  Each page's script list is de-duplicated here.
* **The macros in LaTeX.** The macros of ``mathjax3_config`` (the one list the HTML book and
  the notebooks' first cell use) are also defined in the LaTeX preamble, for the PDF.
* **Stored outputs.** ``COMPATTN_BOOK_EXECUTE=off`` builds from the outputs stored in the
  notebooks (nbval checks them against the library) instead of executing every chapter
  again: ``scripts/pdf`` and ``scripts/student`` use it.
"""
from __future__ import annotations

import os
import re
from pathlib import Path

GITHUB = re.compile(r"^https://[A-Za-z0-9.-]+/[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$")


def repository_override() -> str | None:
    url = os.environ.get("COMPATTN_REPOSITORY", "").strip().rstrip("/")
    if url.endswith(".git"):
        url = url[:-4]
    if not url:
        return None
    if not GITHUB.match(url):
        raise ValueError(f"COMPATTN_REPOSITORY={url!r} is not https://HOST/OWNER/NAME")
    return url


def _set_repository(app, config):
    options = dict(config.html_theme_options or {})
    # pydata-sphinx-theme logs "Got invalid theme mode: ." (a console error on every page)
    # when no default mode is configured (it reads it from html_context)
    context = dict(config.html_context or {})
    if not context.get("default_mode"):
        context["default_mode"] = "auto"
        config.html_context = context
    app.config._compattn_default_repository = options.get("repository_url", "")
    url = repository_override()
    if url:
        options["repository_url"] = url
        config.html_theme_options = options


def _latex_macros(app, config):
    macros = ((config.mathjax3_config or {}).get("tex", {}) or {}).get("macros", {}) or {}
    lines = []
    for name, body in macros.items():
        if isinstance(body, list):     # MathJax's [body, n_args] form
            body = body[0]
        lines.append(f"\\providecommand{{\\{name}}}{{}}\\renewcommand{{\\{name}}}{{{body}}}")
    elements = dict(config.latex_elements or {})
    elements["preamble"] = elements.get("preamble", "") + "\n" + "\n".join(lines) + "\n"
    config.latex_elements = elements


def _execution_mode(app, config):
    mode = os.environ.get("COMPATTN_BOOK_EXECUTE", "").strip()
    if mode:
        if mode not in {"off", "force", "auto", "cache", "inline"}:
            raise ValueError(f"COMPATTN_BOOK_EXECUTE={mode!r}: use off, force, auto or cache")
        config.nb_execution_mode = mode


def _unique_scripts(app, pagename, templatename, context, doctree):
    scripts = context.get("script_files")
    if not scripts:
        return
    seen, unique = set(), []
    for js in scripts:
        key = (getattr(js, "filename", js) or "", getattr(js, "priority", 0),
               tuple(sorted(getattr(js, "attributes", {}).items())))
        if key not in seen:
            seen.add(key)
            unique.append(js)
    scripts[:] = unique


def rewrite_repository(outdir: Path, old: str, new: str) -> int:
    """Replace the default address by ``new`` in every page and downloadable source."""
    if not old or not new or old == new:
        return 0
    changed = 0
    for path in outdir.rglob("*"):
        if path.suffix not in {".html", ".ipynb", ".md", ".txt", ".js"} or not path.is_file():
            continue
        text = path.read_text(encoding="utf-8", errors="surrogateescape")
        if old in text:
            path.write_text(text.replace(old, new), encoding="utf-8", errors="surrogateescape")
            changed += 1
    return changed


def _rewrite_after_build(app, exc):
    if exc is not None or app.builder.format != "html":
        return
    url = repository_override()
    if url:
        rewrite_repository(Path(app.outdir), app.config._compattn_default_repository, url)


def setup(app):
    app.add_config_value("_compattn_default_repository", "", "env")
    app.connect("config-inited", _set_repository, priority=900)
    app.connect("config-inited", _latex_macros, priority=900)
    app.connect("config-inited", _execution_mode, priority=900)
    app.connect("html-page-context", _unique_scripts, priority=999)
    app.connect("build-finished", _rewrite_after_build)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
