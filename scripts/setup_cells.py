"""The first four cells of every chapter, written from one place.

    python scripts/setup_cells.py            # rewrite book/*.ipynb's cells 0-3 (and 3's output)
    python scripts/setup_cells.py --check    # exit 1 and name the chapters that differ

Cell 0  hidden markdown: the book's LaTeX macros, for Jupyter (YAML front matter, read by
        jupyterlab-myst, and ``\\def``s, read by classic Jupyter and Colab); the built
        book takes them from ``sphinx.config.mathjax3_config`` in ``_config.yml``.
Cell 1  the chapter's title cell (left alone).
Cell 2  hidden code: on Colab, install the library from the repository named in
        ``_config.yml`` (``repository.url``).
Cell 3  the one-line setup, ``from compattn.book import setup; info = setup()``, with the
        output it prints at the profile and device the stored outputs are made with.
"""
from __future__ import annotations

import sys
from pathlib import Path

import json

import yaml

ROOT = Path(__file__).resolve().parents[1]
SETUP = "from compattn.book import setup; info = setup()"
STORED_PROFILE, STORED_DEVICE = "tiny", "cpu"   # scripts/execute_notebooks runs at these


def config() -> dict:
    return yaml.safe_load((ROOT / "_config.yml").read_text())


def repository_url() -> str:
    return config()["repository"]["url"].rstrip("/")


def macros() -> dict[str, str]:
    return config()["sphinx"]["config"]["mathjax3_config"]["tex"]["macros"]


def macros_cell_source() -> str:
    front = "\n".join(f"  '\\{name}': '{body}'" for name, body in macros().items())
    # \def, not \newcommand: KaTeX (jupyterlab-myst) refuses to \newcommand a macro the front
    # matter already defined, and \def redefines silently in KaTeX and MathJax alike
    news = "".join(f"\\def\\{name}{{{body}}}" for name, body in macros().items())
    return ("---\nmath:\n" + front + "\n---\n"
            "<!-- The book's LaTeX macros for Jupyter: the front matter above is read by "
            "jupyterlab-myst, the line below by classic Jupyter and Colab -->\n"
            f"${news}$")


def install_cell_source() -> str:
    # a statement, not an expression: it has no value, so it prints nothing anywhere
    return ("# On Colab: install the book's library first (does nothing elsewhere)\n"
            "import sys\n"
            "if \"google.colab\" in sys.modules:\n"
            "    get_ipython().run_line_magic(\n"
            f"        \"pip\", \"install -q git+{repository_url()}\")")


def banner_output() -> str:
    import torch

    from compattn.book import banner

    info = {"profile": STORED_PROFILE, "device": STORED_DEVICE,
            "torch": torch.__version__.split("+")[0]}
    return banner(info) + "\n"


def expected_cells() -> list[dict]:
    return [
        {"cell_type": "markdown", "source": macros_cell_source(), "tags": ["remove-cell"]},
        None,  # the title cell belongs to the chapter
        {"cell_type": "code", "source": install_cell_source(), "tags": ["remove-cell"]},
        {"cell_type": "code", "source": SETUP, "tags": None},
    ]


def read(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def write(nb: dict, path: Path) -> None:
    path.write_text(json.dumps(nb, sort_keys=True, indent=1, ensure_ascii=False) + "\n",
                    encoding="utf-8")


def text(source) -> str:
    return "".join(source) if isinstance(source, list) else source


def lines(source: str) -> list[str]:
    return source.splitlines(keepends=True)


def stream(text_: str) -> dict:
    return {"name": "stdout", "output_type": "stream", "text": lines(text_)}


def chapters() -> list[Path]:
    return sorted((ROOT / "book").glob("*.ipynb"))


def differences(nb) -> list[str]:
    found = []
    for index, want in enumerate(expected_cells()):
        if want is None:
            continue
        cell = nb["cells"][index] if index < len(nb["cells"]) else None
        if (cell is None or cell["cell_type"] != want["cell_type"]
                or text(cell["source"]) != want["source"]):
            found.append(f"cell {index} is not the shared {want['cell_type']} cell")
        elif want["tags"] and want["tags"] != cell["metadata"].get("tags"):
            found.append(f"cell {index} lacks tags {want['tags']}")
    return found


def sync(nb) -> None:
    banner = banner_output()
    for index, want in enumerate(expected_cells()):
        if want is None:
            continue
        cell = nb["cells"][index]
        if cell["cell_type"] != want["cell_type"]:
            raise SystemExit(f"cell {index} is a {cell['cell_type']} cell, expected "
                             f"{want['cell_type']}: fix the chapter by hand first")
        cell["source"] = lines(want["source"])
        if want["tags"]:
            cell["metadata"]["tags"] = want["tags"]
        if index == 2:          # the install cell prints nothing
            cell["outputs"] = []
        if index == 3:
            # the banner is what setup() prints; anything else a chapter prints belongs to
            # a later cell of its own
            old = "".join(text(o.get("text", "")) for o in cell.get("outputs", [])
                          if o.get("output_type") == "stream")
            extra = old.split("\n", 1)[1] if "\n" in old else ""
            nxt = nb["cells"][4] if len(nb["cells"]) > 4 else None
            if extra and nxt is not None and nxt["cell_type"] == "code" and not nxt["outputs"]:
                # outputs of the imports cell that an older combined setup cell had kept
                nxt["outputs"] = [stream(extra)]
                nxt["execution_count"] = nxt.get("execution_count") or 3
            cell["outputs"] = [stream(banner)]
            if cell.get("execution_count") is None:   # nbval: an unrun cell has no outputs
                cell["execution_count"] = 2


def main(argv: list[str]) -> int:
    check = "--check" in argv
    bad = 0
    for path in chapters():
        nb = read(path)
        problems = differences(nb)
        if not check:
            sync(nb)
            write(nb, path)
            print(f"synced {path.relative_to(ROOT)}")
        elif problems:
            bad += 1
            print(f"{path.relative_to(ROOT)}: {'; '.join(problems)}")
    if check and bad:
        print("run: python scripts/setup_cells.py  (or bash scripts/sync_setup_cells)")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
