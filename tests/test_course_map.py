"""The course map (book/course.md) says only what the chapters make true.

The map's two tables (the learning path, the lecture plan), its routes and its exercise
assignments are read from the page, the exercises and prerequisites from the chapters,
and every claim the page makes is checked: study times add up to the total it states;
each step needs every chapter that the chapter itself names as a prerequisite; each route
contains every step its steps need; each lecture covers at most three hours of study and
needs only earlier lectures (also in the shorter versions it proposes); each assigned
exercise exists, in the chapter of its lecture, with the kind the map gives it; every
chapter has three to five exercises and every Part I chapter a pen-and-paper one.  Each
check is a function that returns problems, and the last tests plant an error for each.
"""
import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
COURSE = ROOT / "book" / "course.md"
KINDS = ("pen and paper", "predict, then check", "modify", "interpret")
LECTURE_MINUTES = 90
STUDY_PER_LECTURE = 2 * LECTURE_MINUTES       # in class, and as long again after it


# ---- reading the page and the chapters ----

def list_tables(text: str) -> list[list[list[str]]]:
    """Every ``{list-table}`` of a MyST page as rows of cell texts."""
    tables = []
    for block in re.findall(r"^```\{list-table\}.*?\n(.*?)^```\s*$", text, re.S | re.M):
        rows = []
        for line in block.splitlines():
            if line.startswith("* - "):
                rows.append([line[4:].strip()])
            elif line.startswith("  - "):
                rows[-1].append(line[4:].strip())
            elif line.startswith("    ") and rows:
                rows[-1][-1] += " " + line.strip()
        tables.append(rows)
    return tables


def minutes(text: str) -> int:
    hours = re.search(r"(\d+)\s*h(?:ours?)?\b", text)
    mins = re.search(r"(\d+)\s*min", text)
    if not hours and not mins:
        raise ValueError(f"no study time in {text!r}")
    return 60 * int(hours[1] if hours else 0) + int(mins[1] if mins else 0)


def steps_in(text: str) -> set[int]:
    """The step numbers of "step 3", "steps 1 and 2", "steps 1 to 6", "steps 4, 6 and 10"."""
    found = set()
    for phrase in re.findall(r"steps? ((?:\d+(?:,\s*| and | to |–)?)+)", text):
        for a, b in re.findall(r"(\d+)(?:\s*(?:to|–)\s*(\d+))?", phrase):
            found |= set(range(int(a), int(b or a) + 1))
    return found


def chapter_labels(text: str) -> list[str]:
    return re.findall(r"\{(?:ref|doc)\}`([^`]+)`", text)


def exercise_refs(text: str) -> list[tuple[str, str | None]]:
    """``{numref}`label``` of an exercise, with the kind the map gives it in brackets."""
    return [(label, kind or None) for label, kind in
            re.findall(r"\{numref\}`([^`]+)`(?:\s*\(([^)]*)\))?", " ".join(text.split()))]


def chapters() -> dict[str, dict]:
    """For each chapter label: its file, exercises {label: title} and prerequisite labels."""
    found = {}
    for path in sorted((ROOT / "book").glob("*.ipynb")):
        cells = ["".join(c["source"]) for c in json.loads(path.read_text())["cells"]
                 if c["cell_type"] == "markdown"]
        text = "\n".join(cells)
        label = re.search(r"^\(([^)]+)\)=\s*\n#\s", text, re.M)[1]
        exercises = {m[2]: m[1].strip() for m in re.finditer(
            r"^`{3,}\{exercise\}([^\n]*)\n:label:\s*(\S+)", text, re.M)}
        prereq = re.search(r"\*\*Prerequisites:?\*\*:?(.*?)(?:\n:::|\n\n|$)", text, re.S)
        found[label] = {"file": path.name, "exercises": exercises,
                        "needs": re.findall(r"\{ref\}`([^`]+)`", prereq[1]) if prereq else []}
    return found


def kind_of(title: str) -> str | None:
    bracket = re.search(r"\(([^()]*)\)\s*$", title)
    if bracket:
        return next((k for k in KINDS if bracket[1].startswith(k)), None)
    return None


def read_map(text: str) -> dict:
    path_table, lecture_table = list_tables(text)
    steps = {}
    for step, chapter, needs, study in path_table[1:]:
        labels = chapter_labels(chapter)
        steps[int(step)] = {"label": labels[0], "needs": steps_in(needs), "minutes": minutes(study)}
    lectures = []
    for number, _topic, in_class, after in lecture_table[1:]:
        lectures.append({"number": int(number), "labels": chapter_labels(in_class),
                         "assigned": exercise_refs(after)})
    routes = {name: steps_in(body) for name, body in
              re.findall(r"^- \*([^*]+)\*[^:]*:(.*)$", text, re.M) if "steps" in body}
    total = re.search(r"In all about (\d+) hours?(?: (\d+) minutes)?", text)
    merges = [tuple(int(n) for n in m) for m in re.findall(r"merges\s+lectures (\d+) and (\d+)", text)]
    return {"steps": steps, "lectures": lectures, "routes": routes, "merges": merges,
            "total": 60 * int(total[1]) + int(total[2] or 0) if total else None}


# ---- the claims ----

def closure(steps: dict, wanted: set[int]) -> set[int]:
    todo, seen = list(wanted), set()
    while todo:
        step = todo.pop()
        if step not in seen:
            seen.add(step)
            todo += steps[step]["needs"]
    return seen


def check_path(course: dict, book: dict) -> list[str]:
    steps, problems = course["steps"], []
    by_label = {s["label"]: n for n, s in steps.items()}
    for label in book:
        if label not in by_label:
            problems.append(f"chapter {label} is not on the learning path")
    for n, step in steps.items():
        if any(m >= n for m in step["needs"]):
            problems.append(f"step {n} needs a later step: {sorted(step['needs'])}")
        for needed in book.get(step["label"], {}).get("needs", []):
            if by_label.get(needed) not in closure(steps, step["needs"]):
                problems.append(f"step {n} ({step['label']}) omits {needed}, which its chapter needs")
    total = sum(s["minutes"] for s in steps.values())
    if course["total"] is None or abs(course["total"] - total) > 15:
        problems.append(f"the stated total {course['total']} min is not the sum {total} min")
    return problems


def check_routes(course: dict) -> list[str]:
    problems = []
    if not course["routes"]:
        problems.append("no route found")
    for name, route in course["routes"].items():
        missing = closure(course["steps"], route) - route
        if missing:
            problems.append(f"route {name!r} skips steps {sorted(missing)} that its steps need")
    return problems


def check_lectures(course: dict, book: dict) -> list[str]:
    steps, problems = course["steps"], []
    step_of = {s["label"]: n for n, s in steps.items()}
    covered, taught = {}, set()
    for lecture in course["lectures"]:
        mine = {step_of[label] for label in lecture["labels"] if label in step_of}
        covered[lecture["number"]] = mine
        study = sum(steps[s]["minutes"] for s in mine)
        if study > STUDY_PER_LECTURE:
            problems.append(f"lecture {lecture['number']}: {study} min of study in one lecture "
                            f"(at most {STUDY_PER_LECTURE})")
        needed = set().union(*(steps[s]["needs"] for s in mine)) if mine else set()
        if needed - taught - mine:
            problems.append(f"lecture {lecture['number']} needs steps {sorted(needed - taught - mine)} "
                            "of no earlier lecture")
        taught |= mine
        exercises = {e: c for c in (book.get(steps[s]["label"], {}) for s in mine)
                     for e in c.get("exercises", {})}
        for label, kind in lecture["assigned"]:
            if label not in exercises:
                problems.append(f"lecture {lecture['number']} assigns {label}, no exercise of its chapters")
                continue
            title = exercises[label]["exercises"][label]
            if kind != kind_of(title):
                problems.append(f"lecture {lecture['number']}: {label} is given the kind {kind!r}, "
                                f"its title {title!r} says {kind_of(title)!r}")
    if set(steps) - {0} - taught:
        problems.append(f"steps {sorted(set(steps) - {0} - taught)} are in no lecture")
    for a, b in course["merges"]:
        study = sum(steps[s]["minutes"] for s in covered.get(a, set()) | covered.get(b, set()))
        if b != a + 1 or study > STUDY_PER_LECTURE:
            problems.append(f"merging lectures {a} and {b}: {study} min of study")
    return problems


def check_exercises(book: dict, part_one: list[str]) -> list[str]:
    problems = []
    for label, chapter in book.items():
        if not 3 <= len(chapter["exercises"]) <= 5:
            problems.append(f"{chapter['file']} has {len(chapter['exercises'])} exercises, not three to five")
    for label in part_one:
        if not any(kind_of(t) == "pen and paper" for t in book[label]["exercises"].values()):
            problems.append(f"{book[label]['file']} (Part I) has no pen-and-paper exercise")
    return problems


# ---- the tests ----

@pytest.fixture(scope="module")
def course():
    return read_map(COURSE.read_text())


@pytest.fixture(scope="module")
def book():
    return chapters()


def part_one(book) -> list[str]:
    import yaml

    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files = [c["file"].split("/")[-1] + ".ipynb" for p in toc["parts"] if "Part I:" in p["caption"]
             for c in p["chapters"]]
    return [label for label, c in book.items() if c["file"] in files]


def test_the_map_is_read(course, book):
    assert len(course["steps"]) == len(book) + 1 and len(course["lectures"]) >= 6
    assert all(len(lecture["assigned"]) >= 2 for lecture in course["lectures"])
    assert set(course["routes"]) >= {"The theory", "The practice"}


def test_the_learning_path_is_true(course, book):
    assert check_path(course, book) == []


def test_the_routes_respect_the_prerequisites(course):
    assert check_routes(course) == []


def test_each_lecture_fits_and_its_exercises_exist(course, book):
    assert check_lectures(course, book) == []


def test_the_exercise_counts_and_kinds(book):
    assert check_exercises(book, part_one(book)) == []


@pytest.mark.parametrize("change, check, expect", [
    ("  - step 1; 1-D convolution", "path", "omits ch-mixing"),
    ("In all about 13 hours 35 minutes", "path", "stated total"),
    ("steps 0 to 8, then steps 9 to 11", "routes", "skips steps"),
    ("  - {ref}`ch-kernels` and {ref}`ch-beyond`: the learned kernels", "lectures", "min of study"),
    ("(pen and paper) and {numref}`ex-conv-causal` (modify)", "lectures", "is given the kind"),
    ("{numref}`ex-sweep-4` and", "lectures", "no exercise of its chapters"),
    ("A seven-lecture version merges lectures 1 and 2", "lectures", "merging lectures"),
], ids=["needs", "total", "route", "lecture-too-long", "wrong-kind", "missing-exercise", "merge"])
def test_a_planted_error_is_caught(book, change, check, expect):
    planted = {
        "  - step 1; 1-D convolution": "  - step 0; 1-D convolution",
        "In all about 13 hours 35 minutes": "In all about 11 hours",
        "steps 0 to 8, then steps 9 to 11": "steps 0, 3, 6, 7, 8 and 11",
        "  - {ref}`ch-kernels` and {ref}`ch-beyond`: the learned kernels":
            "  - {ref}`ch-kernels`, {ref}`ch-beyond`, {ref}`ch-training` and {ref}`ch-sweep`: the learned kernels",
        "(pen and paper) and {numref}`ex-conv-causal` (modify)":
            "(interpret) and {numref}`ex-conv-causal` (modify)",
        "{numref}`ex-sweep-4` and": "{numref}`ex-kernels-1` and",
        "A seven-lecture version merges lectures 1 and 2": "A seven-lecture version merges lectures 6 and 7",
    }[change]
    text = COURSE.read_text()
    assert change in text, f"the planted change no longer applies: {change!r}"
    course = read_map(text.replace(change, planted, 1))
    found = {"path": lambda: check_path(course, book), "routes": lambda: check_routes(course),
             "lectures": lambda: check_lectures(course, book)}[check]()
    assert any(expect in p for p in found), found


def test_a_chapter_without_a_pen_and_paper_exercise_is_caught(book):
    first = part_one(book)[0]
    stripped = {**book, first: {**book[first], "exercises": {
        k: t.replace("(pen and paper)", "") for k, t in book[first]["exercises"].items()}}}
    assert any("no pen-and-paper" in p for p in check_exercises(stripped, part_one(book)))
