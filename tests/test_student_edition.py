"""`bash scripts/student` writes the book with every solution removed, and no solution survives."""
import importlib.util
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("student_edition", ROOT / "scripts" / "student_edition.py")
student = importlib.util.module_from_spec(spec)
spec.loader.exec_module(student)

PLANTED = """Before.

```{exercise} Title
:label: ex-x-1
Do it.
```
```{solution} ex-x-1
:class: dropdown
The answer is 42.
```

````{solution} ex-x-2
A longer fence with code inside:
```python
print(42)
```
````

:::{solution} ex-x-3
Colon fence, answer 43.
:::
After.
"""


def test_a_planted_solution_is_caught():
    page = ROOT / "tests" / "_planted.md"
    try:
        page.write_text(PLANTED)
        assert len(student.solutions_left(page)) == 3
    finally:
        page.unlink()


def test_every_fence_style_is_stripped_and_the_exercise_stays():
    text = student.strip_markdown(PLANTED)
    assert "42" not in text and "43" not in text and "{solution}" not in text
    assert "{exercise}" in text and "Do it." in text and text.rstrip().endswith("After.")


def test_gated_solutions_drop_the_cells_between():
    cells = [{"cell_type": "markdown", "metadata": {}, "source": "```{exercise}\n:label: e\nQ\n```"},
             {"cell_type": "markdown", "metadata": {}, "source": "```{solution-start} e\n```"},
             {"cell_type": "code", "metadata": {}, "source": "print('answer')", "outputs": []},
             {"cell_type": "markdown", "metadata": {}, "source": "```{solution-end}\n```"},
             {"cell_type": "markdown", "metadata": {}, "source": "Next."}]
    out = student.strip_notebook({"cells": cells, "metadata": {}})
    assert [c["source"] if isinstance(c["source"], str) else "".join(c["source"])
            for c in out["cells"]] == ["```{exercise}\n:label: e\nQ\n```", "Next."]


def test_the_student_edition_of_this_book_has_no_solution(tmp_path):
    written = student.write_edition(tmp_path / "student")
    chapters = sorted(p.name for p in written if p.suffix == ".ipynb")
    assert chapters == sorted(p.name for p in (ROOT / "book").glob("*.ipynb"))
    left = [hit for p in written if p.suffix in {".ipynb", ".md"} for hit in student.solutions_left(p)]
    assert not left, "solutions survived:\n" + "\n".join(left)
    exercises = sum(json.dumps(json.loads(p.read_text())).count("{exercise}")
                    for p in written if p.suffix == ".ipynb")
    originals = sum(p.read_text().count("{exercise}") for p in (ROOT / "book").glob("*.ipynb"))
    assert exercises == originals, "an exercise was removed with its solution"
    assert (tmp_path / "student" / "_config.yml").exists()
