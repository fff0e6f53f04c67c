"""Every chapter runs outside the checkout, and its stored outputs are what it prints there.

Each notebook is copied alone into an empty temporary directory and checked there with
nbval (the same comparison as ``pytest book/NAME.ipynb``, with ``tests/nbval_sanitize.cfg``):
the chapters may read only what the installed package carries (results through
``compattn.records.results_dir()``, the embedded data sample), never a path of the
checkout.  This is the test suite's one execution of the notebooks.
"""
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = sorted((ROOT / "book").glob("*.ipynb"))


@pytest.mark.parametrize("chapter", CHAPTERS, ids=[p.stem for p in CHAPTERS])
def test_chapter_runs_in_an_empty_directory(chapter, tmp_path):
    work = tmp_path / "elsewhere"
    work.mkdir()
    shutil.copy2(chapter, work / chapter.name)
    env = dict(os.environ, COMPATTN_PROFILE="tiny")
    env.pop("MPLBACKEND", None)
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--nbval",
         "--nbval-current-env", "--nbval-sanitize-with", str(ROOT / "tests" / "nbval_sanitize.cfg"),
         "--rootdir", str(work), "-c", os.devnull, chapter.name],
        cwd=work, env=env, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, (f"{chapter.name} failed outside the checkout:\n"
                                    + result.stdout[-6000:] + result.stderr[-2000:])
