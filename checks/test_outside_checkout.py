"""Every chapter runs outside the checkout, and its stored outputs are what it prints there.

Each notebook is copied alone into an empty temporary directory and checked there with
nbval (the same comparison as ``pytest book/NAME.ipynb``, with ``tests/nbval_sanitize.cfg``):
the chapters may read only what the installed package carries (results through
``compattn.records.results_dir()``, the embedded data sample), never a path of the
checkout.  This is the test suite's one execution of the notebooks.

The chapters run two at a time (``COMPATTN_CHAPTER_WORKERS``), the longest first: each is a
kernel of its own, and much of a chapter's time is its kernel starting and waiting on itself.
"""
import os
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = sorted((ROOT / "book").glob("*.ipynb"))
WORKERS = int(os.environ.get("COMPATTN_CHAPTER_WORKERS", "2"))
# the chapters that train or read every record: started first, so the pairs end together
LONGEST = ("20_training", "21_sweep", "22_scorecard", "24_beyond", "11_fast")


def run_outside(chapter: Path, work: Path) -> subprocess.CompletedProcess:
    work.mkdir(parents=True)
    shutil.copy2(chapter, work / chapter.name)
    env = dict(os.environ, COMPATTN_PROFILE="tiny")
    env.pop("MPLBACKEND", None)
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--nbval",
         "--nbval-current-env", "--nbval-sanitize-with", str(ROOT / "tests" / "nbval_sanitize.cfg"),
         "--rootdir", str(work), "-c", os.devnull, chapter.name],
        cwd=work, env=env, capture_output=True, text=True, timeout=900)


@pytest.fixture(scope="module")
def outcomes(request, tmp_path_factory):
    """The result of every chapter this session selected, ``WORKERS`` at a time."""
    chosen = [item.callspec.params["chapter"] for item in request.session.items
              if getattr(item, "originalname", "") == "test_chapter_runs_in_an_empty_directory"]
    chosen.sort(key=lambda p: LONGEST.index(p.stem) if p.stem in LONGEST else len(LONGEST))
    base = tmp_path_factory.mktemp("outside")
    with ThreadPoolExecutor(max_workers=WORKERS) as pool:
        jobs = {p: pool.submit(run_outside, p, base / p.stem / "elsewhere") for p in chosen}
        return {p: job.result() for p, job in jobs.items()}


@pytest.mark.parametrize("chapter", CHAPTERS, ids=[p.stem for p in CHAPTERS])
def test_chapter_runs_in_an_empty_directory(chapter, outcomes):
    result = outcomes[chapter]
    assert result.returncode == 0, (f"{chapter.name} failed outside the checkout:\n"
                                    + result.stdout[-6000:] + result.stderr[-2000:])
