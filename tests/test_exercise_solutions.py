"""The Python inside the exercises' hidden solutions still matches the library.

Solutions are Markdown (a dropdown a reader opens), so nbval never runs them, and a renamed
library name breaks one without any test noticing. Running every chapter again to execute
them would double the notebooks' share of CI, so this check reads them instead. Each
solution must compile. Every attribute it reads from a module the chapter imports must
exist, and so must every name it imports. Every keyword it passes to a library function
must be one that function takes. A call that builds a mixer from literal arguments is made,
so that the library itself judges its options. Names that the chapter's own cells define are
left alone.
"""
import ast
import inspect
import re

import pytest
from test_chapter_sources import CHAPTERS, cells   # the chapters, and their cells' text

import compattn

SOLUTION = re.compile(r"(`{3,})\{solution\}[^\n]*\n(.*?)\n\1(?!`)", re.S)
PYTHON = re.compile(r"```python\n(.*?)```", re.S)


def solutions(chapter):
    """(label, code) of every ```python block inside a solution directive."""
    for _, cell, source in cells(chapter):
        if cell["cell_type"] != "markdown":
            continue
        for match in SOLUTION.finditer(source):
            label = match.group(0).splitlines()[0].split("}", 1)[1].strip() or "?"
            for code in PYTHON.findall(match.group(2)):
                yield label, code


def chapter_imports(chapter) -> dict:
    """The namespace the chapter's import statements build (nothing else of it is run)."""
    namespace = {}
    for _, cell, source in cells(chapter):
        if cell["cell_type"] != "code":
            continue
        try:
            tree = ast.parse(source)
        except SyntaxError:          # IPython magics; the chapter's own tests cover them
            continue
        for node in tree.body:
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                exec(compile(ast.Module([node], []), "<chapter>", "exec"), namespace)
    return namespace


def resolve(node, namespace):
    """The object an ``a.b.c`` expression names, or None when its root is not imported."""
    if isinstance(node, ast.Name):
        return namespace.get(node.id)
    if isinstance(node, ast.Attribute):
        owner = resolve(node.value, namespace)
        if owner is not None and (inspect.ismodule(owner) or inspect.isclass(owner)):
            if not hasattr(owner, node.attr):
                raise AttributeError(f"{ast.unparse(node.value)} has no attribute {node.attr!r}")
            return getattr(owner, node.attr)
    return None


BUILDERS = {compattn.build, compattn.mixer_parameter_count}


def literal_call(node: ast.Call):
    """(args, kwargs) when every argument is a literal, else None."""
    try:
        return ([ast.literal_eval(a) for a in node.args],
                {k.arg: ast.literal_eval(k.value) for k in node.keywords if k.arg is not None})
    except ValueError:
        return None


def problems(code: str, namespace: dict) -> list[str]:
    try:
        tree = ast.parse(code)
    except SyntaxError as error:
        return [f"does not compile: {error}"]
    namespace = dict(namespace)
    found = []
    for node in ast.walk(tree):       # the solution's own imports come first, wherever they are
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            try:
                exec(compile(ast.Module([node], []), "<solution>", "exec"), namespace)
            except ImportError as error:
                found.append(f"{ast.unparse(node)}: {error}")
    for node in ast.walk(tree):
        try:
            target = resolve(node, namespace) if isinstance(node, ast.Attribute) else None
            if isinstance(node, ast.Call):
                target = resolve(node.func, namespace)
                literal = literal_call(node)
                if target in BUILDERS and literal is not None:
                    try:               # small sizes in exercises: building one costs little
                        target(*literal[0], **literal[1])
                    except (TypeError, ValueError) as error:
                        found.append(f"{ast.unparse(node)}: {error}")
                    continue
                if callable(target) and not any(k.arg is None for k in node.keywords):
                    try:
                        signature = inspect.signature(target)
                    except (TypeError, ValueError):      # builtins without a signature
                        continue
                    try:
                        signature.bind_partial(**{k.arg: None for k in node.keywords})
                    except TypeError as error:
                        found.append(f"{ast.unparse(node.func)}(...): {error}")
        except AttributeError as error:
            found.append(str(error))
    return sorted(set(found))


def test_every_chapter_with_exercises_has_solutions_read_here():
    counted = sum(1 for path in CHAPTERS for _ in solutions(path))
    assert counted >= 20, f"only {counted} solution code blocks found: has the markup changed?"


@pytest.mark.parametrize("chapter", CHAPTERS, ids=[p.stem for p in CHAPTERS])
def test_solutions_use_names_the_library_has(chapter):
    namespace = chapter_imports(chapter)
    wrong = [f"{label}: {problem}" for label, code in solutions(chapter)
             for problem in problems(code, namespace)]
    assert not wrong, f"{chapter.name}, solutions that no longer match the library:\n" + "\n".join(wrong)


def test_a_renamed_name_and_a_wrong_keyword_are_caught():
    namespace = {}
    exec("import compattn\nfrom compattn import symbolic as S", namespace)
    assert problems("S.ell_sym + 1\ncompattn.build('lightconv', 8, 2, max_rel=2)", namespace) == []
    found = problems("x = S.k_sym\nm = compattn.build('lightconv', 8, 2, window=2)\n"
                     "from compattn.train import no_such_function", namespace)
    assert len(found) == 3
    assert any("'k_sym'" in p for p in found)
    assert any("window" in p for p in found)
    assert any("no_such_function" in p for p in found)
    assert problems("def f(:\n  pass", namespace)[0].startswith("does not compile")
