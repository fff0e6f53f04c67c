"""Write the student edition: the book with every exercise's solution removed.

    python scripts/student_edition.py OUT_DIR

Copies the book's sources (configuration, ``book/``, ``_ext/``, ``_static/``) into
``OUT_DIR`` and removes from every notebook and Markdown page

* each ``{solution}`` directive (backtick or colon fence, any fence length), and
* each gated solution, from ``{solution-start}`` to ``{solution-end}``, cells between
  included.

The exercises themselves stay.  Its ``_config.yml`` says ``compattn_edition: student``:
the site's Colab and download buttons then give the student variant of the notebook
edition (``_ext/notebook_edition.py``), its download menu the student PDF, and its pages
build with the Sphinx tag ``student`` (``{only} not student`` blocks, which speak of the
solutions, are left out).  ``solutions_left(path)`` is what the tests use to check that
none survives.
"""
from __future__ import annotations

import json
import re
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FENCE = re.compile(r"^(?P<indent>\s*)(?P<fence>`{3,}|:{3,})\s*\{(?P<name>[\w:-]+)\}")
SOLUTION_WORDS = re.compile(r"\{solution(-start|-end)?\}")


def strip_markdown(text: str) -> str:
    """``text`` without its ``{solution}`` blocks."""
    out, lines, i = [], text.splitlines(keepends=True), 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if m and m["name"] == "solution":
            char, width = m["fence"][0], len(m["fence"])
            closing = re.compile(rf"^\s*{re.escape(char)}{{{width},}}\s*$")
            i += 1
            while i < len(lines) and not closing.match(lines[i]):
                i += 1
            i += 1            # the closing fence
            continue
        out.append(lines[i])
        i += 1
    return "".join(out)


def _is_gate(cell: dict, which: str) -> bool:
    source = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
    return cell["cell_type"] == "markdown" and f"{{solution-{which}}}" in source


def strip_notebook(nb: dict) -> dict:
    cells, gated = [], False
    for cell in nb["cells"]:
        if _is_gate(cell, "start"):
            gated = True
        if gated:
            if _is_gate(cell, "end"):
                gated = False
            continue
        if cell["cell_type"] == "markdown":
            source = "".join(cell["source"]) if isinstance(cell["source"], list) \
                else cell["source"]
            stripped = strip_markdown(source)
            if not stripped.strip():
                continue
            cell = dict(cell, source=stripped.splitlines(keepends=True))
        cells.append(cell)
    return dict(nb, cells=cells)


def solutions_left(path: Path) -> list[str]:
    """Where a solution directive survives in ``path`` (a notebook or a Markdown page)."""
    found = []
    if path.suffix == ".ipynb":
        nb = json.loads(path.read_text(encoding="utf-8"))
        for index, cell in enumerate(nb["cells"]):
            source = "".join(cell["source"]) if isinstance(cell["source"], list) \
                else cell["source"]
            for line in source.splitlines():
                if SOLUTION_WORDS.search(line):
                    found.append(f"{path.name} cell {index}: {line.strip()}")
    else:
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if SOLUTION_WORDS.search(line):
                found.append(f"{path.name}:{number}: {line.strip()}")
    return found


def student_config(text: str) -> str:
    """The book's ``_config.yml`` for the student edition."""
    import yaml

    config = yaml.safe_load(text)
    config["title"] = f"{config['title']} (student edition)"
    config.setdefault("sphinx", {}).setdefault("config", {})["compattn_edition"] = "student"
    return ("# Written by scripts/student_edition.py from the book's _config.yml\n"
            + yaml.safe_dump(config, sort_keys=False, allow_unicode=True))


def write_edition(out: Path, root: Path = ROOT) -> list[Path]:
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    for name in ("_toc.yml", "LICENSE"):
        if (root / name).exists():
            shutil.copy2(root / name, out / name)
    (out / "_config.yml").write_text(student_config((root / "_config.yml").read_text()))
    for folder in ("_ext", "_static"):
        if (root / folder).exists():
            shutil.copytree(root / folder, out / folder,
                            ignore=shutil.ignore_patterns("__pycache__"))
    written = []
    (out / "book").mkdir()
    for src in sorted((root / "book").iterdir()):
        dest = out / "book" / src.name
        if src.suffix == ".ipynb":
            nb = strip_notebook(json.loads(src.read_text(encoding="utf-8")))
            dest.write_text(json.dumps(nb, sort_keys=True, indent=1, ensure_ascii=False) + "\n",
                            encoding="utf-8")
        elif src.suffix == ".md":
            dest.write_text(strip_markdown(src.read_text(encoding="utf-8")), encoding="utf-8")
        elif src.is_file():
            shutil.copy2(src, dest)
        else:
            continue
        written.append(dest)
    return written


def main(argv: list[str]) -> int:
    out = Path(argv[0]) if argv else ROOT / "_build" / "student"
    written = write_edition(out)
    left = [hit for path in written if path.suffix in {".ipynb", ".md"}
            for hit in solutions_left(path)]
    if left:
        print("solutions survived:\n  " + "\n  ".join(left))
        return 1
    print(f"student edition: {len(written)} files in {out} (no solutions)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
