"""A chapter opened in JupyterLab (with the pinned jupyterlab-myst) renders as in the book:
directives ({exercise}, {solution}, {prf:theorem}, admonitions) become boxes, and the book's
macros (\\clip, \\softmax, \\R, defined by the chapter's first cell) are typeset.

Needs the pins (jupyterlab, jupyterlab-myst) and Chromium; skipped where they are missing,
except in CI (``CI`` set), where it fails.
"""
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CHAPTER = ROOT / "book" / "03_equivalence.ipynb"
IN_CI = bool(os.environ.get("CI"))


def unavailable(reason):
    if IN_CI:
        pytest.fail(f"{reason} (never skipped in CI)")
    pytest.skip(reason)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    lab_exe = Path(sys.executable).parent / "jupyter-lab"
    if not lab_exe.exists():
        unavailable("JupyterLab is not installed (pinned in requirements.txt)")
    try:
        import jupyterlab_myst  # noqa: F401
    except ImportError:
        unavailable("jupyterlab-myst is not installed (pinned in requirements.txt)")
    if not shutil.which("chromium") or not shutil.which("chromedriver"):
        unavailable("Chromium and chromedriver are not installed")
    work = tmp_path_factory.mktemp("lab")
    shutil.copy2(CHAPTER, work / CHAPTER.name)
    # the planted defect: the same chapter without its macros cell
    nb = json.loads(CHAPTER.read_text())
    nb["cells"][0]["source"] = ["Nothing defined here."]
    (work / "planted.ipynb").write_text(json.dumps(nb))
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
        # cells render one after another: judge only once the typeset math stops growing
        deadline, logged, typeset_before = time.time() + 60, [], -1
        while True:
            seen = driver.execute_script("""
              const text = Array.from(document.querySelectorAll('.jp-MarkdownCell'))
                                .map(c => c.innerText).join('\\n');
              return {text, typeset: document.querySelectorAll('.jp-MarkdownCell .katex').length,
                      katexErrors: Array.from(document.querySelectorAll('.katex-error')).map(e => e.title || e.textContent),
                      theorems: document.querySelectorAll('.jp-MarkdownCell aside, .jp-MarkdownCell [class*=admonition],'
                                                          + ' .jp-MarkdownCell [class*=proof]').length};""")
            problems = [f"{raw!r} shows as raw text" for raw in
                        ("```{", ":::{", "{prf:theorem}", "{exercise}", "{solution}", "\\clip", "\\softmax")
                        if raw in seen["text"]]
            problems += [f"KaTeX error: {e}" for e in seen["katexErrors"][:5]]
            if not seen["theorems"]:
                problems.append("the theorem and proof directives did not render as boxes")
            logged += [f"jupyterlab-myst logged: {e['message'][:200]}" for e in driver.get_log("browser")
                       if e["level"] == "SEVERE" and "jupyterlab-myst" in e["message"]
                       # a {ref} to another chapter cannot resolve inside one notebook: it
                       # stays as its text, which is what a reader of one notebook expects
                       and "Cross reference target was not found" not in e["message"]]
            problems += logged[:3]
            settled = seen["typeset"] == typeset_before
            typeset_before = seen["typeset"]
            if (settled and not problems) or time.time() > deadline:
                break
            time.sleep(2)
        return problems
    finally:
        driver.quit()


def test_a_chapter_renders_in_jupyterlab(lab):
    problems = problems_in(lab + CHAPTER.name)
    assert not problems, "in JupyterLab:\n" + "\n".join(problems)


def test_a_chapter_without_its_macros_cell_is_caught(lab):
    assert any("KaTeX" in p or "\\clip" in p for p in problems_in(lab + "planted.ipynb"))
