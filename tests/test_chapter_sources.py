"""What the chapters' sources must hold before they are rendered: the shared first cells,
code lines of at most 88 characters, nbval markers as cell tags (never in the source)."""
import importlib.util
import json
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
