"""Planted errors: a check is real only if it fails when the code it guards is wrong.

A :class:`Mutant` is a one-line change to a copy of the repository (``old`` must occur exactly
once in ``file``, so a mutant that no longer applies fails loudly instead of passing) and the
tests that must catch it.  :func:`survives` applies it to a fresh copy of the tracked files and
runs those tests there; the mutant is *killed* when they fail.

Mutants live in ``checks/mutants/*.py``, each module a list ``MUTANTS``; adding one is one
entry.  ``checks/test_mutations.py`` requires every mutant to be killed, and that the unchanged
copy passes the same tests (so a kill is the mutant's doing, not a broken copy).
"""
from __future__ import annotations

import importlib
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Mutant:
    name: str            # what the planted error is, in a few words
    file: str            # path relative to the repository root
    old: str             # the text replaced; must occur exactly once in ``file``
    new: str             # what replaces it
    tests: tuple         # pytest node ids (relative to the root) that must fail on the mutant


def all_mutants() -> list[Mutant]:
    """Every ``MUTANTS`` list of ``checks/mutants/*.py``, in file order."""
    found = []
    for path in sorted((ROOT / "checks" / "mutants").glob("*.py")):
        if path.name.startswith("_"):
            continue
        spec = importlib.util.spec_from_file_location(f"_mutants_{path.stem}", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        found.extend(module.MUTANTS)
    names = [m.name for m in found]
    if len(set(names)) != len(names):
        raise ValueError(f"two mutants share a name: {sorted(n for n in names if names.count(n) > 1)}")
    return found


def tracked_copy(dest: Path) -> Path:
    """The tracked files of the repository (as they are on disk) copied to ``dest``."""
    files = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, text=True,
                           check=True).stdout.split("\0")
    for name in filter(None, files):
        source = ROOT / name
        if source.is_file():
            target = dest / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    return dest


def apply(mutant: Mutant, root: Path) -> None:
    path = root / mutant.file
    text = path.read_text()
    count = text.count(mutant.old)
    if count != 1:
        raise ValueError(f"mutant {mutant.name!r}: {mutant.old!r} occurs {count} times in {mutant.file} "
                         "(it must occur exactly once; update the mutant)")
    path.write_text(text.replace(mutant.old, mutant.new))


def run_tests(root: Path, tests, timeout: int = 600) -> subprocess.CompletedProcess:
    """``pytest`` on ``tests`` inside ``root``, importing the package from ``root`` (not from the
    checkout the virtual environment points at)."""
    env = dict(os.environ, PYTHONPATH=str(root), PYTHONDONTWRITEBYTECODE="1")
    probe = subprocess.run([sys.executable, "-c", "import compattn; print(compattn.__file__)"], cwd=root,
                           env=env, capture_output=True, text=True, check=True).stdout.strip()
    if not Path(probe).resolve().is_relative_to(root.resolve()):
        raise RuntimeError(f"the copy in {root} imports compattn from {probe}")
    # nbval's and anyio's plugins load on every pytest start (nbval imports nbformat and
    # jsonschema: about 2 s), and no mutant's tests are notebooks or async
    return subprocess.run([sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider",
                           "-p", "no:nbval", "-p", "no:anyio",
                           "-o", "addopts=", "-W", "ignore::DeprecationWarning", *tests],
                          cwd=root, env=env, capture_output=True, text=True, timeout=timeout)


def survives(mutant: Mutant, workdir: Path) -> tuple[bool, str]:
    """``(survived, pytest's output tail)`` for one mutant applied to a copy under ``workdir``."""
    root = tracked_copy(Path(workdir) / "repo")
    apply(mutant, root)
    result = run_tests(root, mutant.tests)
    return result.returncode == 0, (result.stdout + result.stderr)[-3000:]


__all__ = ["Mutant", "all_mutants", "tracked_copy", "apply", "run_tests", "survives"]
