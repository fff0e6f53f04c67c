"""Open every page of the built book in headless Chromium and check what a reader sees.

Run ``bash scripts/book`` first.  Where Chromium, its driver or the built book is missing
the tests are skipped with the reason -- except in CI (``CI`` set), where they fail.
Screenshots of every page go to ``_build/screenshots/``.

Each check is a function that returns the problems it finds on the open page; the
``test_planted_*`` tests open small pages with one defect each and require that the check
finds it, so a check that silently stopped working would fail here too.
"""
import os
import re
import shutil
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
HTML = ROOT / "_build" / "html"
SHOTS = ROOT / "_build" / "screenshots"
IN_CI = bool(os.environ.get("CI"))
WIDE, NARROW = 1280, 390

# Words that address the project's developers, not its readers.
DEVELOPER_WORDS = re.compile(
    r"\b(issues? (?:that|which|asked|filed|tracker)|research notes?|the lead\b|sessions?\b|"
    r"TODO|FIXME|XXX\b|shared/reference|DESIGN\.md|work ?tree|the repository'?s history)",
    re.IGNORECASE)
RAW_LATEX = re.compile(r"\$|\\[A-Za-z]{2,}|\\[()\[\]{}]|\^\{|_\{")


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
def chrome():
    chromium, driver_path = shutil.which("chromium"), shutil.which("chromedriver")
    if not chromium or not driver_path:
        unavailable("Chromium and chromedriver are not installed "
                    "(Debian: apt-get install chromium chromium-driver)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", f"--window-size={WIDE},1600", "--hide-scrollbars"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(driver_path), options=options)
    driver.set_page_load_timeout(60)
    SHOTS.mkdir(parents=True, exist_ok=True)
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def browser(chrome):
    if not (HTML / "index.html").exists():
        unavailable("the book is not built; run `bash scripts/book` first")
    return chrome


def open_page(driver, path: Path) -> list[dict]:
    """Load ``path``, wait for it and for MathJax; return the browser's console log."""
    from selenium.webdriver.support.ui import WebDriverWait

    driver.set_window_size(WIDE, 1600)
    driver.get_log("browser")                      # drop what earlier pages logged
    driver.get(path.as_uri())
    WebDriverWait(driver, 30).until(lambda d: d.execute_script("return document.readyState") == "complete")
    if 'class="math' in path.read_text():
        WebDriverWait(driver, 30).until(
            lambda d: d.execute_script("return window.MathJax && MathJax.startup &&"
                                       " MathJax.startup.promise ? true : false"),
            message=f"{path.name}: MathJax did not start")
        driver.execute_async_script("const done = arguments[0]; MathJax.startup.promise.then(() => done(true));")
    return driver.get_log("browser")


# ---- the checks: each returns a list of problems on the open page ----

VISIBLE_PROSE = """
const root = (document.querySelector('article') || document.body).cloneNode(true);
root.querySelectorAll('pre, code, script, style, mjx-container, .highlight, .cell_input,'
                      + ' .headerlink, mjx-assistive-mml').forEach(e => e.remove());
return root.textContent;
"""
VISIBLE_ALL = """
const root = (document.querySelector('article') || document.body).cloneNode(true);
root.querySelectorAll('script, style, mjx-container').forEach(e => e.remove());
return root.textContent;
"""


def check_raw_latex(driver) -> list[str]:
    """TeX that MathJax did not typeset: ``$``, ``\\sum``, ``\\(``, ``_{`` in prose or tables."""
    text = driver.execute_script(VISIBLE_PROSE)
    problems, shown_to = [], -1
    for match in RAW_LATEX.finditer(text):
        if match.start() < shown_to:          # one report per stretch of raw TeX
            continue
        start, shown_to = max(match.start() - 40, 0), match.end() + 40
        problems.append("raw LaTeX: ..." + text[start:shown_to].replace("\n", " ") + "...")
    errors = driver.execute_script("return Array.from(document.querySelectorAll('mjx-merror'))"
                                   ".map(e => e.textContent)")
    problems += [f"MathJax error: {e}" for e in errors]
    return problems


OVERFLOW = """
const slack = 1;
const out = [];
const scrolls = e => ['auto', 'scroll'].includes(getComputedStyle(e).overflowX);
for (const t of document.querySelectorAll('article table')) {
  let box = t.parentElement;
  while (box && box.tagName !== 'ARTICLE' && !scrolls(box)) box = box.parentElement;
  box = box || t.parentElement;
  if (t.getBoundingClientRect().width > box.clientWidth + slack)
    out.push({kind: 'table', what: t.innerText.slice(0, 80), width: t.getBoundingClientRect().width,
              room: box.clientWidth, scrolls: scrolls(box)});
}
for (const p of document.querySelectorAll('article pre')) {
  if (p.scrollWidth > p.clientWidth + slack)
    out.push({kind: 'code', what: p.textContent.split('\\n').sort((a, b) => b.length - a.length)[0].slice(0, 100),
              width: p.scrollWidth, room: p.clientWidth, scrolls: scrolls(p)});
}
const a = document.querySelector('article');
return {items: out, page: document.documentElement.scrollWidth, view: window.innerWidth,
        article: a ? [a.scrollWidth, a.clientWidth] : null};
"""


def check_fits_wide(driver) -> list[str]:
    """At 1280 px every table and code block fits its column (nothing hidden behind a scroll)."""
    driver.set_window_size(WIDE, 1600)
    found = driver.execute_script(OVERFLOW)
    return [f"{i['kind']} wider than its column at {WIDE} px ({i['width']:.0f} > {i['room']} px): "
            f"{i['what']!r}" for i in found["items"]]


def check_usable_narrow(driver) -> list[str]:
    """At 390 px the page does not scroll sideways; a wide table or code block scrolls in
    its own box (with a visible cue, _static/book.css) instead of running off the screen."""
    driver.set_window_size(NARROW, 900)
    try:
        found = driver.execute_script(OVERFLOW)
    finally:
        driver.set_window_size(WIDE, 1600)
    problems = [f"{i['kind']} runs off the screen at {NARROW} px and cannot be scrolled: {i['what']!r}"
                for i in found["items"] if not i["scrolls"]]
    if found["page"] > found["view"] + 1:
        problems.append(f"the page scrolls sideways at {NARROW} px ({found['page']} > {found['view']} px)")
    return problems


def check_folded(driver) -> list[str]:
    """Cells tagged hide-input show their output with the code folded away."""
    shown = driver.execute_script("""
      return Array.from(document.querySelectorAll('.tag_hide-input .cell_input, .tag_hide-input .cell_input pre'))
        .filter(e => (e.checkVisibility ? e.checkVisibility({contentVisibilityAuto: true,
                       opacityProperty: true, visibilityProperty: true}) : e.offsetHeight > 0)
                     && e.innerText.trim() !== '')
        .map(e => e.innerText.slice(0, 60));""")
    return [f"a hide-input cell shows its code: {s!r}" for s in shown]


def check_no_developer_text(driver) -> list[str]:
    text = driver.execute_script(VISIBLE_ALL)
    problems = []
    for match in DEVELOPER_WORDS.finditer(text):
        start = max(match.start() - 50, 0)
        problems.append("text for developers: ..." + text[start:match.end() + 50].replace("\n", " ") + "...")
    if "NBVAL_" in text:
        problems.append("an nbval marker is visible: " + text[text.index("NBVAL_") - 20:][:60])
    return problems


def check_console(log: list[dict]) -> list[str]:
    return [f"console {e['level']}: {e['message']}" for e in log if e["level"] in ("SEVERE", "ERROR")]


def check_favicon(driver, path: Path) -> list[str]:
    hrefs = driver.execute_script("return Array.from(document.querySelectorAll('link[rel~=icon]'))"
                                  ".map(l => l.getAttribute('href'))")
    if not hrefs:
        return ["no favicon: the browser asks for /favicon.ico and gets a 404"]
    return [f"favicon {h} does not exist" for h in hrefs
            if "://" not in h and not (path.parent / h.split("?")[0]).exists()]


RESULTS_NAME = re.compile(r"\b((?:sweep|beyond|evidence)-[a-z]+|bench-[a-z]+\.json)\b")


def check_banners(driver) -> list[str]:
    """The live banner names profile and device; results shown name theirs too."""
    outputs = driver.execute_script("return Array.from(document.querySelectorAll('.cell_output'))"
                                    ".map(e => e.innerText)")
    problems = []
    text = "\n".join(outputs)
    if outputs and "Live cells:" in text and not re.search(r"Live cells: profile \S+, device \S+", text):
        problems.append("the setup banner does not name the profile and the device")
    for name in sorted(set(RESULTS_NAME.findall(text))):
        near = [o for o in outputs if name in o]
        if not any("device" in o and "profile" in o for o in near):
            problems.append(f"results {name} are shown without the profile and device they were made with")
    return problems


def check_basics(driver, path: Path) -> list[str]:
    problems = []
    heading = driver.execute_script("const h = document.querySelector('article h1, main h1');"
                                    "return h ? h.textContent.replace('#', '').trim() : '';")
    if not heading:
        problems.append("no title (h1)")
    elif heading.split()[0] not in driver.title:
        problems.append(f"<title> {driver.title!r} lacks {heading!r}")
    if 'class="math' in path.read_text() and not driver.execute_script(
            "return document.querySelectorAll('mjx-container').length"):
        problems.append("MathJax typeset nothing")
    broken = driver.execute_script("return Array.from(document.images).filter("
                                   "i => !(i.complete && i.naturalWidth > 0)).map(i => i.src)")
    problems += [f"image did not load: {b}" for b in broken]
    outputs = driver.execute_script("return Array.from(document.querySelectorAll('.cell_output'))"
                                    ".map(e => e.textContent).join('\\n')")
    if "Traceback (most recent call last)" in outputs or driver.execute_script(
            "return document.querySelectorAll('.cell_output .traceback').length"):
        problems.append("a cell output has a traceback")
    if "|---|" in outputs or "|—|" in outputs:
        problems.append("a Markdown table output rendered as text")
    remote = driver.execute_script("return performance.getEntriesByType('resource').map(e => e.name)"
                                   ".filter(n => !n.startsWith('file:') && !n.startsWith('data:'))")
    problems += [f"loaded from the network: {r}" for r in remote]
    return problems


FIGURES = """
return Array.from(document.querySelectorAll('article figure')).map(f => {
  const img = f.querySelector('img');
  const cap = f.querySelector('figcaption');
  return {alt: img ? (img.getAttribute('alt') || '') : null,
          caption: cap ? cap.innerText.trim() : ''};
});"""
BARE_IMAGES = """
return Array.from(document.querySelectorAll('article img'))
  .filter(i => !i.closest('figure')).map(i => i.getAttribute('src').slice(-60));"""


def check_figures(driver) -> list[str]:
    """Every figure is numbered ("Figure 7.1"), captioned, and has alt text in words."""
    problems = []
    for figure in driver.execute_script(FIGURES):
        what = figure["caption"][:50] or "a figure"
        if not re.match(r"Figure \d+\.\d+\S*\s+\S", figure["caption"]):
            problems.append(f"{what!r}: no numbered caption")
        alt = figure["alt"] or ""
        if len(alt.split()) < 5 or re.search(r"\.(png|jpe?g|svg)$|/", alt):
            problems.append(f"{what!r}: alt text {alt[:40]!r} does not say what the figure shows")
    return problems


def all_problems(driver, path: Path, log) -> dict[str, list[str]]:
    return {"basics": check_basics(driver, path), "raw LaTeX": check_raw_latex(driver),
            "fits at 1280 px": check_fits_wide(driver), "usable at 390 px": check_usable_narrow(driver),
            "folded": check_folded(driver), "developer text": check_no_developer_text(driver),
            "console": check_console(log), "favicon": check_favicon(driver, path),
            "banners": check_banners(driver), "figures": check_figures(driver)}


@pytest.mark.parametrize("page", toc_pages())
def test_page_renders(browser, page):
    path = HTML / f"{page}.html"
    assert path.exists(), f"{page} is in _toc.yml but {path} was not built"
    log = open_page(browser, path)
    browser.save_screenshot(str(SHOTS / f"{page.replace('/', '_')}.png"))
    found = {k: v for k, v in all_problems(browser, path, log).items() if v}
    assert not found, f"{page}:\n" + "\n".join(f"  [{k}] {p}" for k, v in found.items() for p in v)


# ---- planted defects: each check must catch its defect ----

PAGE = """<!DOCTYPE html><html><head><meta charset="utf-8"><title>Planted page</title>
{head}<style>body {{ margin: 0; }} article {{ width: 700px; margin: 0 auto; max-width: 100%; }}
.scroll {{ overflow-x: auto; }}</style></head>
<body><article class="bd-article"><h1>Planted page</h1>{body}</article></body></html>"""
ICON = '<link rel="icon" href="icon.svg">'
WIDE_TABLE = ("<table><tr>" + "".join(f"<td>column-number-{i}-with-long-text</td>" for i in range(12))
              + "</tr></table>")


def planted(tmp_path, body, head=ICON, name="planted.html") -> Path:
    (tmp_path / "icon.svg").write_text('<svg xmlns="http://www.w3.org/2000/svg"/>')
    path = tmp_path / name
    path.write_text(PAGE.format(head=head, body=body))
    return path


def run_check(chrome, path, check):
    log = open_page(chrome, path)
    if check is check_console:
        return check(log)
    if check in (check_favicon, check_basics):
        return check(chrome, path)
    return check(chrome)


def test_a_clean_planted_page_passes(chrome, tmp_path):
    path = planted(tmp_path, "<p>Plain prose, and a small table:</p><table><tr><td>a</td></tr></table>"
                             "<pre>print(1)</pre>")
    log = open_page(chrome, path)
    found = {k: v for k, v in all_problems(chrome, path, log).items() if v}
    assert not found


@pytest.mark.parametrize("body, check, expect", [
    ("<p>the sum $\\sum_{r} a_r$ stays raw</p>", check_raw_latex, "raw LaTeX"),
    ("<table><tr><td>$\\sum_{</td><td>x</td></tr></table>", check_raw_latex, "raw LaTeX"),
    ("<p>inline \\(x\\) left</p>", check_raw_latex, "raw LaTeX"),
    (f"<div>{WIDE_TABLE}</div>", check_fits_wide, "table wider than its column"),
    (f"<div class='scroll'>{WIDE_TABLE}</div>", check_fits_wide, "table wider than its column"),
    ("<pre>x = " + "1 + " * 60 + "1</pre>", check_fits_wide, "code wider than its column"),
    (f"<div style='overflow: visible'>{WIDE_TABLE}</div>", check_usable_narrow, "cannot be scrolled"),
    ("<div class='cell tag_hide-input'><div class='cell_input'><pre>plumbing()</pre></div>"
     "<div class='cell_output'>out</div></div>", check_folded, "shows its code"),
    ("<p>The issue that asked for this chapter, see the research notes.</p>",
     check_no_developer_text, "text for developers"),
    ("<pre># NBVAL_IGNORE_OUTPUT\nx = 1</pre>", check_no_developer_text, "nbval marker"),
    ("<script>const THEBE_JS_URL = 1;</script><script>const THEBE_JS_URL = 1;</script>",
     check_console, "already been declared"),
    ("<div class='cell_output'>sweep-small: 16 runs</div>", check_banners, "without the profile and device"),
    ("<div class='cell_output'>Live cells: profile tiny</div>", check_banners, "does not name"),
    ("<figure><img src='icon.svg' alt='_build/jupyter_execute/a.png'><figcaption>Figure 7.1 A plot"
     "</figcaption></figure>", check_figures, "alt text"),
    ("<figure><img src='icon.svg' alt='Two heat maps side by side, one per variant'>"
     "<figcaption>A plot</figcaption></figure>", check_figures, "no numbered caption"),
], ids=["dollar-sum", "table-cell", "paren", "table-1280", "table-1280-scrolling", "code-1280",
        "table-390", "hide-input", "developer-words", "nbval", "console-error", "results-banner",
        "live-banner", "figure-alt", "figure-caption"])
def test_planted_defect_is_caught(chrome, tmp_path, body, check, expect):
    problems = run_check(chrome, planted(tmp_path, body), check)
    assert any(expect in p for p in problems), f"{check.__name__} missed {expect!r}: {problems}"


def test_planted_missing_favicon_is_caught(chrome, tmp_path):
    assert any("no favicon" in p for p in run_check(chrome, planted(tmp_path, "<p>x</p>", head=""), check_favicon))
    bad = planted(tmp_path, "<p>x</p>", head='<link rel="icon" href="missing.png">')
    assert any("does not exist" in p for p in run_check(chrome, bad, check_favicon))


def test_folded_code_passes(chrome, tmp_path):
    body = ("<div class='cell tag_hide-input'><details class='hide above-input'><summary>Show code</summary>"
            "<div class='cell_input'><pre>plumbing()</pre></div></details><div class='cell_output'>out</div></div>")
    assert run_check(chrome, planted(tmp_path, body), check_folded) == []


# ---- navigation, search and the landing page, as a reader uses them ----
#
# The theme's menu and page-contents buttons are checked with real clicks (Selenium's
# click() on the visible button, a pointer click outside an open dialog), at a phone's, a
# tablet's and a laptop's width.  Each check is also run on a copy of the page without the
# local fix it relies on (_static/book.js, _static/book.css) and must fail there.

WIDTHS = (NARROW, 900, WIDE)
NAV_PAGE = "book/03_equivalence"
CHAPTER_LINKS = ".bd-sidebar-primary nav.bd-links a.reference"
CONTENTS_LINKS = ".bd-sidebar-secondary .page-toc a"
IN_VIEW = """const r = arguments[0].getBoundingClientRect();
const s = getComputedStyle(arguments[0]);
return r.width > 0 && r.height > 0 && r.right > 0 && r.left < innerWidth && r.bottom > 0
       && r.top < innerHeight && s.visibility !== 'hidden' && arguments[0].checkVisibility(
       {opacityProperty: true, visibilityProperty: true});"""


def shown(driver, selector) -> bool:
    """Whether a reader sees any link of ``selector`` (in the viewport, not hidden)."""
    from selenium.webdriver.common.by import By

    return any(driver.execute_script(IN_VIEW, e) for e in driver.find_elements(By.CSS_SELECTOR, selector))


def wait_for(driver, condition, seconds=3.0) -> bool:
    import time

    deadline = time.time() + seconds
    while time.time() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return condition()


def click_outside(driver, dialog) -> None:
    """A real pointer click on the backdrop, beside the open dialog."""
    from selenium.webdriver.common.actions.action_builder import ActionBuilder

    rect = driver.execute_script("const r = arguments[0].getBoundingClientRect();"
                                 "return [r.left, r.right, innerWidth, innerHeight];", dialog)
    left, right, width, height = rect
    x = right + (width - right) / 2 if width - right > 20 else left / 2
    action = ActionBuilder(driver)
    action.pointer_action.move_to_location(int(x), int(height / 2))
    action.pointer_action.click()
    action.perform()


def check_navigation(driver, path: Path, width: int) -> list[str]:
    """The chapter list and the page contents open and close with a click on the visible
    button; where the contents have no button (1280 px) they are shown."""
    from selenium.common.exceptions import WebDriverException
    from selenium.webdriver.common.by import By

    driver.set_window_size(width, 900)
    driver.get(path.as_uri())
    wait_for(driver, lambda: driver.execute_script("return document.readyState") == "complete")
    problems = []
    for kind, what, links in (("primary", "chapter list", CHAPTER_LINKS),
                              ("secondary", "page contents", CONTENTS_LINKS)):
        buttons = [b for b in driver.find_elements(By.CSS_SELECTOR, f".{kind}-toggle") if b.is_displayed()]
        before = shown(driver, links)
        if not buttons:
            if not before:
                problems.append(f"{width} px: the {what} is neither shown nor has a visible button")
            continue
        try:
            buttons[0].click()
        except WebDriverException as e:
            problems.append(f"{width} px: the {what} button cannot be clicked: {e.msg[:120]}")
            continue
        if not wait_for(driver, lambda: shown(driver, links) != before):
            problems.append(f"{width} px: clicking the visible {what} button does not "
                            f"{'hide' if before else 'show'} the {what}")
            continue
        dialog = driver.find_element(By.ID, f"pst-{kind}-sidebar-modal")
        if driver.execute_script("return arguments[0].open", dialog):
            click_outside(driver, dialog)
        else:
            buttons[0].click()
        if not wait_for(driver, lambda: shown(driver, links) == before):
            problems.append(f"{width} px: a second click does not {'show' if before else 'close'} "
                            f"the {what} again")
    driver.set_window_size(WIDE, 1600)
    return problems


def check_one_search_box(driver) -> list[str]:
    from selenium.webdriver.common.by import By

    driver.set_window_size(WIDE, 1600)
    boxes = [b for b in driver.find_elements(By.CSS_SELECTOR, ".search-button-field") if b.is_displayed()]
    return [] if len(boxes) == 1 else [f"{len(boxes)} search boxes at {WIDE} px"]


def check_code_fits_narrow(driver) -> list[str]:
    """At 390 px every code block is readable without scrolling sideways."""
    driver.set_window_size(NARROW, 900)
    try:
        found = driver.execute_script(OVERFLOW)
    finally:
        driver.set_window_size(WIDE, 1600)
    return [f"code cut off at {NARROW} px ({i['width']} > {i['room']} px): {i['what']!r}"
            for i in found["items"] if i["kind"] == "code"]


def without(page: Path, asset: str) -> Path:
    """A copy of ``page`` next to it with every tag that loads ``asset`` removed."""
    text = re.sub(rf"<(?:script|link)[^>]*{re.escape(asset)}[^>]*>(?:</script>)?", "", page.read_text())
    assert text != page.read_text(), f"{page.name} does not load {asset}"
    planted = page.with_name(f"_planted_{page.name}")
    planted.write_text(text)
    return planted


@pytest.mark.parametrize("width", WIDTHS)
def test_navigation_opens_and_closes(browser, width):
    problems = check_navigation(browser, HTML / f"{NAV_PAGE}.html", width)
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("width", (NARROW, 900))
def test_navigation_without_the_fix_is_caught(browser, width):
    planted = without(HTML / f"{NAV_PAGE}.html", "book.js")
    try:
        assert check_navigation(browser, planted, width)
    finally:
        planted.unlink()


def test_one_search_box(browser):
    page = HTML / f"{NAV_PAGE}.html"
    open_page(browser, page)
    assert check_one_search_box(browser) == []
    planted = without(page, "book.css")
    try:
        open_page(browser, planted)
        assert check_one_search_box(browser), "two search boxes were not caught"
    finally:
        planted.unlink()


def test_the_landing_page_code_fits_a_phone(browser):
    open_page(browser, HTML / f"{toc_pages()[0]}.html")
    assert check_code_fits_narrow(browser) == []


def test_code_cut_off_on_a_phone_is_caught(chrome, tmp_path):
    path = planted(tmp_path, "<pre>git clone https://github.com/some-long-owner-name/some-long-repository-name"
                             " &amp;&amp; cd some-long-repository-name</pre>")
    open_page(chrome, path)
    assert check_code_fits_narrow(chrome)


@pytest.fixture(scope="module")
def served():
    """The built site over HTTP (search fetches each result's page for its snippet)."""
    import functools
    import http.server
    import threading

    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(HTML))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    handler.log_message = lambda *a: None
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def search_snippets(driver, url: str) -> list[str]:
    driver.set_window_size(WIDE, 1600)
    driver.get(url)
    wait_for(driver, lambda: driver.execute_script(
        "return document.querySelectorAll('#search-results li').length > 0"), 30)
    wait_for(driver, lambda: driver.execute_script(
        "const li = document.querySelectorAll('#search-results li');"
        "return li.length && document.querySelectorAll('#search-results p.context').length >= li.length"), 30)
    return driver.execute_script("return Array.from(document.querySelectorAll('#search-results p.context'))"
                                 ".map(p => p.textContent)")


def raw_tex_in(snippets: list[str]) -> list[str]:
    return [s[:160] for s in snippets if RAW_LATEX.search(s)]


SEARCH_WORD = "softmax"      # a word next to math on many pages


def test_search_snippets_have_no_raw_tex(browser, served):
    snippets = search_snippets(browser, f"{served}/search.html?q={SEARCH_WORD}")
    assert len(snippets) >= 3, f"search for {SEARCH_WORD!r} found {len(snippets)} pages"
    assert not raw_tex_in(snippets), "\n".join(raw_tex_in(snippets))


def test_raw_tex_in_snippets_is_caught(browser, served):
    planted = without(HTML / "search.html", "book.js")
    try:
        snippets = search_snippets(browser, f"{served}/{planted.name}?q={SEARCH_WORD}")
        assert raw_tex_in(snippets), "snippets without the fix showed no TeX"
    finally:
        planted.unlink()


# Chapters whose every figure goes through compattn.plots.show and a {glue:figure}.
CAPTIONED_CHAPTERS = ("book/10_all_variants", "book/11_fast", "book/23_kernels")


@pytest.mark.parametrize("page", CAPTIONED_CHAPTERS)
def test_every_figure_of_a_chapter_is_numbered(browser, page):
    open_page(browser, HTML / f"{page}.html")
    bare = browser.execute_script(BARE_IMAGES)
    figures = browser.execute_script(FIGURES)
    assert figures and not bare, f"{page}: {len(figures)} numbered figures, images without a caption: {bare}"
