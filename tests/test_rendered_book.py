"""Open every page of the built book in headless Chromium and check what a reader sees.

Run ``bash scripts/book`` first.  Where Chromium, its driver or the built book is missing
the tests are skipped with the reason -- except in CI (``CI`` set), where they fail.
Screenshots of every page go to ``_build/screenshots/``.
"""
import os
import shutil
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
HTML = ROOT / "_build" / "html"
SHOTS = ROOT / "_build" / "screenshots"
IN_CI = bool(os.environ.get("CI"))


def toc_pages() -> list[str]:
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    pages = [toc["root"]]

    def walk(entries):
        for item in entries or []:
            if "file" in item:
                pages.append(item["file"])
            walk(item.get("sections"))

    for part in toc.get("parts", []):
        walk(part.get("chapters"))
    walk(toc.get("chapters"))
    return pages


def unavailable(reason):
    if IN_CI:
        pytest.fail(f"{reason} (never skipped in CI)")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def browser():
    chromium, driver_path = shutil.which("chromium"), shutil.which("chromedriver")
    if not chromium or not driver_path:
        unavailable("Chromium and chromedriver are not installed "
                    "(Debian: apt-get install chromium chromium-driver)")
    if not (HTML / "index.html").exists():
        unavailable("the book is not built; run `bash scripts/book` first")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", "--window-size=1280,1600", "--hide-scrollbars"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(driver_path), options=options)
    driver.set_page_load_timeout(60)
    SHOTS.mkdir(parents=True, exist_ok=True)
    yield driver
    driver.quit()


VISIBLE_TEXT = """
const body = document.body.cloneNode(true);
body.querySelectorAll('pre, code, script, style, mjx-container, .highlight').forEach(e => e.remove());
return body.textContent;
"""


@pytest.mark.parametrize("page", toc_pages())
def test_page_renders(browser, page):
    from selenium.webdriver.support.ui import WebDriverWait

    path = HTML / f"{page}.html"
    assert path.exists(), f"{page} is in _toc.yml but {path} was not built"
    static = path.read_text()
    browser.get(path.as_uri())
    WebDriverWait(browser, 30).until(lambda d: d.execute_script("return document.readyState") == "complete")

    heading = browser.execute_script("const h = document.querySelector('article h1, main h1');"
                                     "return h ? h.textContent.replace('#', '').trim() : '';")
    assert heading, f"{page}: no title (h1)"
    assert heading.split()[0] in browser.title, f"{page}: <title> {browser.title!r} lacks {heading!r}"

    if 'class="math' in static:
        WebDriverWait(browser, 30).until(
            lambda d: d.execute_script("return document.querySelectorAll('mjx-container').length > 0"
                                       " && !document.querySelector('.MathJax_Processing')"),
            message=f"{page}: MathJax typeset nothing")
        WebDriverWait(browser, 30).until(
            lambda d: d.execute_script("return window.MathJax && MathJax.startup &&"
                                       " MathJax.startup.promise ? true : false"))
        browser.execute_async_script("const done = arguments[0]; MathJax.startup.promise.then(() => done(true));")
        text = browser.execute_script(VISIBLE_TEXT)
        for raw in ("\\[", "\\(", "$$"):
            assert raw not in text, f"{page}: raw math {raw!r} left untypeset"
        errors = browser.execute_script("return Array.from(document.querySelectorAll('mjx-merror'))"
                                        ".map(e => e.textContent)")
        assert not errors, f"{page}: MathJax errors {errors}"

    broken = browser.execute_script("return Array.from(document.images).filter("
                                    "i => !(i.complete && i.naturalWidth > 0)).map(i => i.src)")
    assert not broken, f"{page}: images that did not load: {broken}"

    outputs = browser.execute_script("return Array.from(document.querySelectorAll('.cell_output'))"
                                     ".map(e => e.textContent).join('\\n')")
    assert "Traceback (most recent call last)" not in outputs, f"{page}: a cell output has a traceback"
    assert not browser.execute_script("return document.querySelectorAll('.cell_output .traceback').length")

    remote = browser.execute_script("return performance.getEntriesByType('resource').map(e => e.name)"
                                    ".filter(n => !n.startsWith('file:') && !n.startsWith('data:'))")
    assert not remote, f"{page}: loaded resources from the network: {remote}"

    browser.save_screenshot(str(SHOTS / f"{page.replace('/', '_')}.png"))
    # a results table printed with Markdown() must arrive as a table, not as a line of pipes
    assert "|---|" not in outputs and "|—|" not in outputs, f"{page}: a Markdown table output rendered as text"
