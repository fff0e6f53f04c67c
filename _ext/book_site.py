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
* **Notebooks anyone can open.** A chapter's ``.ipynb`` download is its notebook edition
  (``_ext/notebook_edition.py``: plain Markdown, written into ``notebooks/`` of the site),
  and its Colab button opens the same file on the repository's ``notebooks`` branch, which
  the publishing workflow fills with that folder.  The student edition
  (``compattn_edition: student``, set by ``scripts/student_edition.py``) opens the
  variant without solutions, ``student/NAME.ipynb``, and its pages build with the Sphinx
  tag ``student`` (``{only} not student`` hides text that speaks of solutions).
* **The PDFs.** When ``bash scripts/pdf`` has built them (``_build/latex/``, or
  ``COMPATTN_PDF_DIR``), the PDFs are copied into the site and the download menu of every
  page links them in place of the browser's "print to PDF".
"""
from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

GITHUB = re.compile(r"^https://[A-Za-z0-9.-]+/[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$")
NOTEBOOKS_BRANCH = "notebooks"      # .github/workflows/book.yml publishes the edition there
PDFS = {"compattn.pdf": "Book (PDF)", "compattn-student.pdf": "Student edition (PDF)"}
COLAB_BLOB = re.compile(r"(?P<head>/github/[^/]+/[^/]+/blob/)[^/]+/(?:[^?#]*/)?(?P<name>[^/?#]+)\.ipynb")


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


def _edition(app, config):
    if config.compattn_edition not in ("full", "student"):
        raise ValueError(f"compattn_edition={config.compattn_edition!r}: use full or student")
    if config.compattn_edition == "student":
        app.tags.add("student")


def pdf_dir(app) -> Path:
    return Path(os.environ.get("COMPATTN_PDF_DIR") or Path(app.srcdir) / "_build" / "latex")


def _copy_pdfs(app):
    """Put the PDFs that exist into the site, before its pages are written."""
    if app.builder.format != "html":
        return
    names = ["compattn-student.pdf"] if app.config.compattn_edition == "student" else list(PDFS)
    app._compattn_pdfs = []
    for name in names:
        if (pdf_dir(app) / name).exists():
            Path(app.outdir).mkdir(parents=True, exist_ok=True)
            shutil.copy2(pdf_dir(app) / name, Path(app.outdir) / name)
            app._compattn_pdfs.append(name)


def notebook_buttons(header_buttons: list, pathto, pagename: str, student: bool,
                     pdfs: list[str]) -> None:
    """Point a page's download and launch buttons at the notebook edition and the PDFs."""
    name = pagename.rsplit("/", 1)[-1]
    edition = f"notebooks/{name}.ipynb"
    for group in header_buttons:
        buttons = group.get("buttons", [])
        if group.get("label") == "download-buttons":
            kept = []
            for button in buttons:
                label = button.get("label")
                if button.get("text") == ".ipynb":      # the MyST source: the edition instead
                    button["url"] = pathto(edition, 1)
                    button["tooltip"] = "Download the notebook (plain Markdown, any Jupyter)"
                elif label == "download-pdf-button" and pdfs:
                    continue            # the book's PDFs below replace "print to PDF"
                kept.append(button)
            for pdf in pdfs:
                kept.append({"type": "link", "url": pathto(pdf, 1), "text": PDFS[pdf],
                             "tooltip": f"Download the {PDFS[pdf]}", "icon": "fas fa-file-pdf",
                             "label": f"download-{pdf[:-4]}-button"})
            group["buttons"] = kept
        for button in buttons:
            url = button.get("url", "")
            if "colab" in url and url.endswith(".ipynb"):
                path = f"student/{name}" if student else name
                button["url"] = COLAB_BLOB.sub(
                    lambda m: f"{m['head']}{NOTEBOOKS_BRANCH}/{path}.ipynb", url)


def _buttons(app, pagename, templatename, context, doctree):
    if context.get("header_buttons") is None:
        return
    notebook_buttons(context["header_buttons"], context["pathto"], pagename,
                     app.config.compattn_edition == "student",
                     getattr(app, "_compattn_pdfs", []))


def setup(app):
    if "compattn_edition" not in app.config.values:
        app.add_config_value("compattn_edition", "full", "env")
    app.add_config_value("_compattn_default_repository", "", "env")
    app.connect("config-inited", _edition, priority=900)
    app.connect("builder-inited", _copy_pdfs)
    app.connect("html-page-context", _buttons, priority=600)
    app.connect("config-inited", _set_repository, priority=900)
    app.connect("config-inited", _latex_macros, priority=900)
    app.connect("config-inited", _execution_mode, priority=900)
    app.connect("html-page-context", _unique_scripts, priority=999)
    app.connect("build-finished", _rewrite_after_build)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
