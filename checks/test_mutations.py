"""The mutation check: every planted error of ``checks/mutants/`` is caught by the tests named
with it (see ``checks/mutation.py``).  The unchanged copy passes the same tests first, so a
kill means the tests saw the error, not a broken copy."""
import pytest

from mutation import all_mutants, run_tests, survives, tracked_copy

MUTANTS = all_mutants()


def test_the_unchanged_copy_passes_every_mutants_tests(tmp_path):
    root = tracked_copy(tmp_path / "repo")
    for mutant in MUTANTS:
        apply_check = (root / mutant.file).read_text().count(mutant.old)
        assert apply_check == 1, f"mutant {mutant.name!r} does not apply to {mutant.file}"
    tests = sorted({t for m in MUTANTS for t in m.tests})
    result = run_tests(root, tests)
    assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]


@pytest.mark.parametrize("mutant", MUTANTS, ids=[m.name for m in MUTANTS])
def test_planted_error_is_caught(mutant, tmp_path):
    survived, output = survives(mutant, tmp_path)
    assert not survived, f"mutant {mutant.name!r} survived {list(mutant.tests)}:\n{output}"
