"""The mutation check: every planted error of ``checks/mutants/`` is caught by the tests named
with it (see ``checks/mutation.py``).  The unchanged copy passes the same library tests, so a
kill means the tests saw the error, not a broken copy.

The copies are tested two at a time (``COMPATTN_MUTATION_WORKERS``): each is a separate pytest
process, much of it waiting on its own start-up and subprocesses, so two of them share two
cores well."""
import os
from concurrent.futures import ThreadPoolExecutor

import pytest

from mutation import ROOT, all_mutants, run_tests, survives, tracked_copy

MUTANTS = all_mutants()
WORKERS = int(os.environ.get("COMPATTN_MUTATION_WORKERS", "2"))


def not_applying() -> list[str]:
    """The mutants whose ``old`` text is not in their file exactly once (the file changed)."""
    return [f"{m.name!r} ({m.file})" for m in MUTANTS if (ROOT / m.file).read_text().count(m.old) != 1]


def unchanged(workdir):
    """``(passed, output)`` of the mutants' library tests (``tests/``) on an unchanged copy.

    The end-to-end checks some mutants name (``checks/``: the chaos run, the evidence runs)
    take minutes and already run in this suite on the same tracked files -- CI's clean
    checkout holds nothing else -- so the copy is not made to run them a second time."""
    root = tracked_copy(workdir / "repo")
    result = run_tests(root, sorted({t for m in MUTANTS for t in m.tests if t.startswith("tests/")}))
    return result.returncode == 0, (result.stdout + result.stderr)[-4000:]


def test_every_mutant_applies_to_its_file():
    assert not not_applying(), "update these mutants to the current code: " + ", ".join(not_applying())


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory):
    """Every copy tested once, ``WORKERS`` at a time, the slowest (the unchanged copy) first
    (nothing runs when a mutant no longer applies: that test says which)."""
    if not_applying():
        pytest.skip("a mutant no longer applies (test_every_mutant_applies_to_its_file)")
    base = tmp_path_factory.mktemp("mutation")
    with ThreadPoolExecutor(max_workers=WORKERS) as pool:
        jobs = {None: pool.submit(unchanged, base / "unchanged")}
        jobs.update({m.name: pool.submit(survives, m, base / f"m{i}") for i, m in enumerate(MUTANTS)})
        return {name: job.result() for name, job in jobs.items()}


def test_the_unchanged_copy_passes_every_mutants_tests(outcomes):
    passed, output = outcomes[None]
    assert passed, output


@pytest.mark.parametrize("mutant", MUTANTS, ids=[m.name for m in MUTANTS])
def test_planted_error_is_caught(mutant, outcomes):
    survived, output = outcomes[mutant.name]
    assert not survived, f"mutant {mutant.name!r} survived {list(mutant.tests)}:\n{output}"
