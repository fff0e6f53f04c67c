"""Serve MathJax 3 from the installed ``django-static-mathjax`` wheel instead of a CDN.

Sphinx points ``mathjax_path`` at a CDN by default, so a book read offline shows raw
``\\[ ... \\]``.  This extension makes every page load ``_static/mathjax/tex-mml-chtml.js``
and copies the parts of MathJax 3.2.2 that page needs into the build.
"""
import shutil
from pathlib import Path

PARTS = ["tex-mml-chtml.js", "input", "output", "a11y", "ui", "sre", "adaptors"]


def _mathjax_es5() -> Path:
    import mathjax  # the top-level package shipped by django-static-mathjax

    return Path(mathjax.__file__).parent / "static" / "mathjax" / "es5"


def _point_sphinx_at_local_copy(app, config):
    config.mathjax_path = "mathjax/tex-mml-chtml.js"  # relative: resolved under _static/


def _copy_mathjax(app, exc):
    if exc is not None or app.builder.format != "html":
        return
    dest = Path(app.outdir) / "_static" / "mathjax"
    for part in PARTS:
        src = _mathjax_es5() / part
        if src.is_dir():
            shutil.copytree(src, dest / part, dirs_exist_ok=True)
        elif src.exists():
            dest.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / part)


def setup(app):
    app.connect("config-inited", _point_sphinx_at_local_copy, priority=900)
    app.connect("build-finished", _copy_mathjax)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
