"""JupyterLab as a reader meets it: ``bash scripts/lab`` opens the notebook edition
(``_ext/notebook_edition.py``) in the pinned JupyterLab with jupyterlab-myst.

* ``jupyter labextension list`` reports the pinned jupyterlab-myst as compatible with the
  pinned JupyterLab (jupyterlab-myst 2.7.0 needs @jupyter/ydoc 3, which JupyterLab 4.6
  replaced by 4; 4.5 still has 3).
* A chapter renders: math typeset (no KaTeX error), no raw MyST, citations as
  "(Author Year)" and cross-references as titles -- no raw citation key, no warning --
  and solutions folded in ``<details>``.  The stored MyST chapter, opened the same way,
  shows raw citation keys: the planted error the check must catch.

Needs the pins (jupyterlab, jupyterlab-myst) and Chromium; skipped where they are missing,
except in CI (``CI`` set), where it fails.
"""
import importlib.util
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CHAPTER = "03_equivalence.ipynb"
IN_CI = bool(os.environ.get("CI"))
BIN = Path(sys.executable).parent
spec = importlib.util.spec_from_file_location("notebook_edition", ROOT / "_ext" / "notebook_edition.py")
edition = importlib.util.module_from_spec(spec)
sys.modules[spec.name] = edition
spec.loader.exec_module(edition)
# what `jupyter labextension list` printed for jupyterlab-myst 2.7.0 under JupyterLab 4.6.6
INCOMPATIBLE_LISTING = """JupyterLab v4.6.6
/venv/share/jupyter/labextensions
        jupyterlab-myst v2.7.0 enabled  X (python, jupyterlab_myst)
        jupyterlab_pygments v0.3.0 enabled OK (python, jupyterlab_pygments)


"jupyterlab-myst@2.7.0" is not compatible with the current JupyterLab
Conflicting Dependencies:
JupyterLab    Extension         Package
>=4.0.0-b1 <5.0.0>=3.0.0 <4.0.0    @jupyter/ydoc
"""


def unavailable(reason):
    if IN_CI:
        pytest.fail(f"{reason} (never skipped in CI)")
    pytest.skip(reason)


def listing_problems(listing: str) -> list[str]:
    """What ``jupyter labextension list`` says is wrong with the installed extensions."""
    listing = re.sub(r"\x1b\[[0-9;]*m", "", listing)
    problems = [line.strip() for line in listing.splitlines()
                if "is not compatible" in line or re.search(r"\benabled\s+X\b", line)]
    if not re.search(r"jupyterlab-myst v\S+\s+enabled\s+OK", listing):
        problems.append("jupyterlab-myst is not listed as enabled and OK")
    return problems


def test_the_pinned_lab_extensions_are_compatible():
    exe = BIN / "jupyter"
    if not (BIN / "jupyter-labextension").exists():
        unavailable("JupyterLab is not installed (pinned in requirements.txt)")
    result = subprocess.run([str(exe), "labextension", "list"], capture_output=True, text=True,
                            timeout=120)
    problems = listing_problems(result.stdout + result.stderr)
    assert not problems, "\n".join(problems)


def test_an_incompatible_listing_is_caught():
    assert len(listing_problems(INCOMPATIBLE_LISTING)) >= 2


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    lab_exe = BIN / "jupyter-lab"
    if not lab_exe.exists():
        unavailable("JupyterLab is not installed (pinned in requirements.txt)")
    try:
        import jupyterlab_myst  # noqa: F401
    except ImportError:
        unavailable("jupyterlab-myst is not installed (pinned in requirements.txt)")
    if not shutil.which("chromium") or not shutil.which("chromedriver"):
        unavailable("Chromium and chromedriver are not installed")
    work = tmp_path_factory.mktemp("lab")
    edition.write_edition(work / "edition", variants=("full",))       # what scripts/lab opens
    shutil.copy2(work / "edition" / CHAPTER, work / CHAPTER)
    # the planted defect: the chapter as stored, in MyST
    shutil.copy2(ROOT / "book" / CHAPTER, work / "stored.ipynb")
    # JupyterLab attaches only the cells in view by default; attach all of them, so the checks
    # below see every Markdown cell (a macro used far down the page included)
    settings = work / ".settings" / "@jupyterlab" / "notebook-extension"
    settings.mkdir(parents=True)
    (settings / "tracker.jupyterlab-settings").write_text(json.dumps({"windowingMode": "none"}))
    port = free_port()
    server = subprocess.Popen(
        [str(lab_exe), "--no-browser", f"--port={port}", "--ServerApp.token=", "--ServerApp.password=",
         "--allow-root", f"--ServerApp.root_dir={work}", "--LabApp.news_url=None"],
        cwd=work, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        env=dict(os.environ, JUPYTER_CONFIG_DIR=str(work / ".config"),
                 JUPYTERLAB_SETTINGS_DIR=str(work / ".settings")))
    try:
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.5)
        else:
            pytest.fail("JupyterLab did not start within 60 s")
        yield f"http://127.0.0.1:{port}/lab/tree/"
    finally:
        server.terminate()
        server.wait(timeout=30)


def problems_in(url) -> list[str]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.support.ui import WebDriverWait

    keys = sorted(edition.load_book().bib)
    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium")
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--window-size=1400,2000"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=options)
    try:
        driver.get(url)
        WebDriverWait(driver, 90, poll_frequency=1).until(
            lambda d: d.execute_script("return document.querySelectorAll('.jp-MarkdownCell .katex').length > 5"),
            message="no math typeset in the notebook's Markdown cells")
        # cells render one after another: judge only once the typeset math stops growing (a
        # page with problems is judged once it has not changed for three polls, not at the deadline)
        deadline, logged, typeset_before, unchanged_polls = time.time() + 60, [], -1, 0
        while True:
            seen = driver.execute_script("""
              const text = Array.from(document.querySelectorAll('.jp-MarkdownCell'))
                                .map(c => c.innerText).join('\\n');
              return {text, typeset: document.querySelectorAll('.jp-MarkdownCell .katex').length,
                      katexErrors: Array.from(document.querySelectorAll('.katex-error')).map(e => e.title || e.textContent),
                      details: Array.from(document.querySelectorAll('.jp-MarkdownCell details')).map(d => d.open),
                      warnings: document.querySelectorAll('.jp-MarkdownCell [class*=warning], .jp-MarkdownCell [class*=error]').length};""")
            problems = [f"{raw!r} shows as raw text" for raw in
                        ("```{", ":::{", "{prf:theorem}", "{exercise}", "{solution}", "{cite}", "{ref}",
                         "\\clip", "\\softmax")
                        if raw in seen["text"]]
            problems += [f"a target {t!r} shows as raw text"
                         for t in re.findall(r"^\([^()\s]+\)=\s*$", seen["text"], re.M)]
            problems += [f"a citation shows as its raw key {key!r}" for key in keys if key in seen["text"]]
            problems += [f"KaTeX error: {e}" for e in seen["katexErrors"][:5]]
            if seen["warnings"]:
                problems.append(f"{seen['warnings']} warning or error marks in the Markdown cells")
            if not seen["details"]:
                problems.append("no solution folded in a <details> block")
            elif any(seen["details"]):
                problems.append("a solution is shown unfolded")
            logged += [f"jupyterlab-myst logged: {e['message'][:200]}" for e in driver.get_log("browser")
                       if e["level"] == "SEVERE" and "jupyterlab-myst" in e["message"]]
            problems += logged[:3]
            settled = seen["typeset"] == typeset_before
            unchanged_polls = unchanged_polls + 1 if settled else 0
            typeset_before = seen["typeset"]
            if (settled and not problems) or unchanged_polls >= 3 or time.time() > deadline:
                break
            time.sleep(2)
        return problems
    finally:
        driver.quit()


def test_a_chapter_of_the_notebook_edition_renders_in_jupyterlab(lab):
    problems = problems_in(lab + CHAPTER)
    assert not problems, "in JupyterLab:\n" + "\n".join(problems)


def test_the_stored_myst_chapter_is_caught(lab):
    problems = problems_in(lab + "stored.ipynb")
    assert any("raw key" in p for p in problems), problems
