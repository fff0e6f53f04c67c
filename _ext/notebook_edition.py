"""The notebook edition: every chapter as a plain Jupyter notebook that reads cleanly in
Colab, classic Jupyter, JupyterLab and VS Code, none of which understands MyST.

    python _ext/notebook_edition.py OUT_DIR          # OUT_DIR/NAME.ipynb and OUT_DIR/student/NAME.ipynb

The book's chapters are MyST notebooks: their Markdown cells hold directives
(``{exercise}``, ``{solution}``, ``{prf:theorem}``, ``{admonition}``, ``{glue:figure}``),
roles (``{cite}``, ``{ref}``, ``{eq}``, ``{numref}``, ``{doc}``), targets ``(label)=`` and a
first cell of YAML front matter with the LaTeX macros.  This module rewrites each of them
as plain Markdown, numbered as the book numbers them:

* an exercise becomes **Exercise 7.1 (title).**, a theorem **Theorem 3.1 (title).**, a
  proof *Proof.* ... ∎, an admonition a quoted block under its bold title;
* a solution becomes a collapsed ``<details>`` block ("Solution to Exercise 7.1"); the
  *student* variant has none;
* a citation becomes "(Chang et al. 2021)", and a "References" cell at the end lists what
  the chapter cites; a cross-reference becomes the chapter's or section's title, an
  equation reference its number "(1.1)", a figure reference "Figure 7.1";
* a ``{glue:figure}`` becomes its caption, **Figure 7.1.** ..., right under the image that
  the cell before it displays (``compattn.plots.show``);
* the macros (``\\softmax``, ``\\clip``, ``\\R``) are written out where they are used, so no
  first cell has to define them.

Code cells and their outputs stay as they are (cells the book folds away start folded in
JupyterLab and VS Code).  Loaded as a Sphinx extension it writes both variants into the
HTML build, under ``notebooks/`` (the site's download buttons and the published
``notebooks`` branch that Colab opens; see ``_ext/book_site.py``).
"""
from __future__ import annotations

import copy
import json
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
# a directive's opening fence: ```{name} argument  or  :::{name} argument
FENCE = re.compile(r"^(?P<indent> {0,3})(?P<fence>`{3,}|:{3,})\s*(?P<info>.*)$")
DIRECTIVE = re.compile(r"^\{(?P<name>[\w:.-]+)\}\s*(?P<arg>.*)$")
OPTION = re.compile(r"^:(?P<key>[\w-]+):\s*(?P<value>.*)$")
TARGET = re.compile(r"^\s*\((?P<label>[^()\s]+)\)=\s*$")
HEADING = re.compile(r"^(?P<hashes>#{1,6})\s+(?P<text>.+?)\s*#*\s*$")
ROLE = re.compile(r"\{(?P<name>[\w:.-]+)\}`(?P<body>[^`]*)`")
EXPLICIT = re.compile(r"^(?P<text>.*?)\s*<(?P<target>[^<>]+)>$", re.S)
LABELLED_MATH = re.compile(r"\$\$(?P<body>.+?)\$\$[ \t]*\((?P<label>[^()\s]+)\)", re.S)
ADMONITIONS = {"note": "Note", "tip": "Tip", "hint": "Hint", "important": "Important",
               "warning": "Warning", "caution": "Caution", "attention": "Attention",
               "danger": "Danger", "error": "Error", "seealso": "See also"}
PROOF_KINDS = {"theorem", "lemma", "definition", "remark", "conjecture", "corollary",
               "algorithm", "example", "property", "observation", "proposition",
               "assumption", "axiom", "criterion", "notation"}
DROPPED = {"bibliography", "glossary", "nb-exec-table", "toctree", "tableofcontents"}


# ---------------------------------------------------------------------------------------
# What the book knows: chapter numbers and titles, labels and their numbers, references.

@dataclass
class Label:
    text: str            # what a reference to it reads: a title, "Exercise 7.1", "(1.1)"
    doc: str             # the page it lives on
    kind: str            # chapter, section, exercise, proof, figure, equation


@dataclass
class Book:
    root: Path
    numbers: dict[str, int] = field(default_factory=dict)      # doc -> chapter number
    titles: dict[str, str] = field(default_factory=dict)       # doc -> title
    labels: dict[str, Label] = field(default_factory=dict)
    bib: dict = field(default_factory=dict)                    # key -> pybtex entry
    macros: dict[str, str] = field(default_factory=dict)


def toc_docs(root: Path) -> list[tuple[str, bool]]:
    """Every page of ``_toc.yml`` in order, with whether its part is numbered."""
    toc = yaml.safe_load((root / "_toc.yml").read_text())
    docs = [(toc["root"], False)]

    def walk(entries, numbered):
        for item in entries or []:
            if "file" in item:
                docs.append((item["file"], numbered))
            walk(item.get("sections"), numbered)

    for part in toc.get("parts", []):
        walk(part.get("chapters"), bool(part.get("numbered")))
    walk(toc.get("chapters"), bool(toc.get("defaults", {}).get("numbered")))
    return docs


def source_of(root: Path, doc: str) -> Path | None:
    for suffix in (".ipynb", ".md"):
        if (root / f"{doc}{suffix}").exists():
            return root / f"{doc}{suffix}"
    return None


def text(source) -> str:
    return "".join(source) if isinstance(source, list) else source


def markdown_of(path: Path) -> list[str]:
    """The Markdown of a page: its Markdown cells, or the whole file."""
    if path.suffix == ".md":
        return [path.read_text(encoding="utf-8")]
    nb = json.loads(path.read_text(encoding="utf-8"))
    return [text(c["source"]) for c in nb["cells"] if c["cell_type"] == "markdown"]


def config(root: Path) -> dict:
    return yaml.safe_load((root / "_config.yml").read_text())


def load_book(root: Path = ROOT) -> Book:
    book = Book(root=root)
    cfg = config(root)
    book.macros = (((cfg.get("sphinx") or {}).get("config") or {}).get("mathjax3_config")
                   or {}).get("tex", {}).get("macros", {})
    chapter = 0
    for doc, numbered in toc_docs(root):
        path = source_of(root, doc)
        if path is None:
            continue
        if numbered:
            chapter += 1
            book.numbers[doc] = chapter
        scan_labels(book, doc, markdown_of(path))
    for bibfile in cfg.get("bibtex_bibfiles", []):
        from pybtex.database import parse_file

        book.bib.update(parse_file(str(root / bibfile)).entries)
    return book


def scan_labels(book: Book, doc: str, cells: list[str]) -> None:
    """Record the page's title and every label on it, numbered as the book numbers them."""
    n = book.numbers.get(doc)
    counters: dict[str, int] = {}

    def number(kind):
        counters[kind] = counters.get(kind, 0) + 1
        return f"{n}.{counters[kind]}" if n else str(counters[kind])

    pending = None
    for source in cells:
        lines = source.splitlines()
        for i, line in enumerate(lines):
            target = TARGET.match(line)
            if target:
                pending = target["label"]
                continue
            heading = HEADING.match(line)
            if heading:
                title = plain_title(heading["text"])
                level = len(heading["hashes"])
                if level == 1 and doc not in book.titles:
                    book.titles[doc] = title
                if pending:
                    kind = "chapter" if level == 1 else "section"
                    book.labels[pending] = Label(title, doc, kind)
                pending = None
                continue
            if line.strip():
                pending = None
            fence = FENCE.match(line)
            directive = DIRECTIVE.match(fence["info"]) if fence else None
            if not directive:
                continue
            name = directive["name"]
            options = {}
            for later in lines[i + 1:]:
                option = OPTION.match(later.strip())
                if not option:
                    break
                options[option["key"]] = option["value"]
            if name == "exercise" and "label" in options:
                book.labels[options["label"]] = Label(f"Exercise {number('exercise')}", doc,
                                                      "exercise")
            elif name.startswith("prf:") and name[4:] in PROOF_KINDS:
                kind = name[4:]
                label = f"{kind.capitalize()} {number(kind)}"
                if "label" in options:
                    book.labels[options["label"]] = Label(label, doc, "proof")
            elif name in ("glue:figure", "figure") and "name" in options:
                book.labels[options["name"]] = Label(f"Figure {number('figure')}", doc,
                                                     "figure")
        for math in LABELLED_MATH.finditer(source):
            book.labels[math["label"]] = Label(f"({number('equation')})", doc, "equation")


def plain_title(title: str) -> str:
    """A heading as text: roles and inline code markers dropped."""
    title = ROLE.sub(lambda m: m["body"], title)
    return title.replace("`", "").strip()


# ---------------------------------------------------------------------------------------
# Citations

_NAMES: dict[tuple, str] = {}     # pybtex looks its plugins up on every render: once per entry


def cite_name(entry) -> str:
    key = (entry.key, tuple(str(p) for role in ("author", "editor")
                            for p in entry.persons.get(role, [])), entry.fields.get("title"))
    if key not in _NAMES:
        _NAMES[key] = _cite_name(entry)
    return _NAMES[key]


def _cite_name(entry) -> str:
    from pybtex.backends.plaintext import Backend
    from pybtex.richtext import Text

    text = Backend()
    people = entry.persons.get("author") or entry.persons.get("editor") or []
    lasts = [Text.from_latex(" ".join(p.last_names)).render(text) for p in people]
    if not lasts:
        return entry.fields.get("title", "?")
    if len(lasts) == 1:
        return lasts[0]
    if len(lasts) == 2:
        return f"{lasts[0]} and {lasts[1]}"
    return f"{lasts[0]} et al."


def references_cell(book: Book, keys: list[str]) -> str:
    """A Markdown list of the cited entries, formatted like the book's bibliography."""
    from pybtex.plugin import find_plugin

    style = find_plugin("pybtex.style.formatting", "plain")()
    backend = find_plugin("pybtex.backends", "markdown")()
    entries = sorted((book.bib[k] for k in keys if k in book.bib),
                     key=lambda e: (cite_name(e), e.fields.get("year", "")))
    lines = ["## References", ""]
    for formatted in style.format_entries(entries):
        body = " ".join(formatted.text.render(backend).split())
        lines.append(f"- {body}")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------
# Markdown: MyST in, plain Markdown out

@dataclass
class Context:
    book: Book
    doc: str
    student: bool
    cited: list[str] = field(default_factory=list)

    @property
    def chapter(self):
        return self.book.numbers.get(self.doc)


def convert_roles(line: str, ctx: Context) -> str:
    def role(match):
        name, body = match["name"], match["body"]
        explicit = EXPLICIT.match(body)
        shown, target = (explicit["text"], explicit["target"]) if explicit else (None, body)
        if name.startswith("cite"):
            keys = [k.strip() for k in target.split(",") if k.strip()]
            for key in keys:
                if key not in ctx.cited:
                    ctx.cited.append(key)
            parts = [(cite_name(ctx.book.bib[k]), ctx.book.bib[k].fields.get("year", ""))
                     if k in ctx.book.bib else (k, "") for k in keys]
            if name in ("cite:t", "cite:ts", "cite:author"):
                return "; ".join(f"{who} ({year})" for who, year in parts)
            before = match.string[:match.start()].rstrip()
            if len(parts) == 1 and parts[0][1] and before.endswith(parts[0][0]):
                return f"({parts[0][1]})"       # "Shaw et al. (2018)", not the name twice
            return "(" + "; ".join(f"{who} {year}".strip() for who, year in parts) + ")"
        if name in ("ref", "numref", "eq", "doc", "prf:ref", "term", "download", "any"):
            return reference(name, shown, target, ctx)
        if name == "math":
            return f"${body}$"
        return shown or target     # any other role: its text
    return ROLE.sub(role, line)


def reference(name: str, shown: str | None, target: str, ctx: Context) -> str:
    book = ctx.book
    if name == "doc":
        doc = resolve_doc(target, ctx.doc)
        return shown or book.titles.get(doc, target)
    if name in ("term", "download"):
        return shown or target
    label = book.labels.get(target)
    if label is None:
        return shown or target
    if name == "numref" and shown and "%s" in shown:
        return shown.replace("%s", label.text.split()[-1])
    if name == "numref" and shown and "{number}" in shown:
        return shown.replace("{number}", label.text.split()[-1])
    if shown:
        return shown
    if label.kind == "chapter":
        number = book.numbers.get(label.doc)
        return f"*{label.text}* (Chapter {number})" if number else f"*{label.text}*"
    if label.kind == "section":
        if label.doc == ctx.doc:
            return f"*{label.text}*"
        number = book.numbers.get(label.doc)
        where = f"Chapter {number}" if number else book.titles.get(label.doc, "")
        return f"*{label.text}* ({where})" if where else f"*{label.text}*"
    return label.text


def resolve_doc(target: str, current: str) -> str:
    if target.startswith("/"):
        return target.strip("/")
    base = current.rsplit("/", 1)[0] if "/" in current else ""
    return f"{base}/{target}" if base else target


def expand_macros(tex: str, macros: dict) -> str:
    for name, body in macros.items():
        if isinstance(body, list):
            body = body[0]
        tex = re.sub(rf"\\{name}(?![A-Za-z])", lambda m, b=body: b, tex)
    return tex


def convert_markdown(source: str, ctx: Context) -> str:
    """A Markdown cell (or a directive's body) in plain Markdown."""
    source = LABELLED_MATH.sub(
        lambda m: f"$${m['body'].rstrip()} \\tag{{{numbered_label(m['label'], ctx)}}}$$",
        source)
    out: list[str] = []
    lines = source.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        fence = FENCE.match(line)
        if fence:
            end = closing_fence(lines, i, fence["fence"])
            body = lines[i + 1:end]
            directive = DIRECTIVE.match(fence["info"].strip())
            if directive:
                out.extend(convert_directive(directive["name"], directive["arg"].strip(),
                                             body, ctx).splitlines())
            else:                       # a code block: copied as it is
                out.extend(lines[i:end + 1])
            i = end + 1
            continue
        if TARGET.match(line) or line.startswith("%") or line.strip() == "+++":
            i += 1
            continue
        out.append(convert_roles(line, ctx))
        i += 1
    return expand_macros("\n".join(out), ctx.book.macros).strip("\n")


def numbered_label(label: str, ctx: Context) -> str:
    found = ctx.book.labels.get(label)
    return found.text.strip("()") if found else label


def closing_fence(lines: list[str], start: int, fence: str) -> int:
    char, width = fence[0], len(fence)
    closing = re.compile(rf"^\s*{re.escape(char)}{{{width},}}\s*$")
    for j in range(start + 1, len(lines)):
        if closing.match(lines[j]):
            return j
    return len(lines)


def split_options(body: list[str]) -> tuple[dict, list[str]]:
    options, i = {}, 0
    if body and body[0].strip() == "---":          # YAML options block
        end = next((j for j in range(1, len(body)) if body[j].strip() == "---"), None)
        if end is not None:
            options = yaml.safe_load("\n".join(body[1:end])) or {}
            return options, body[end + 1:]
    while i < len(body):
        option = OPTION.match(body[i].strip())
        if not option:
            break
        options[option["key"]] = option["value"]
        i += 1
    return options, body[i:]


def quoted(markdown: str) -> str:
    return "\n".join(f"> {line}".rstrip() for line in markdown.splitlines())


def convert_directive(name: str, arg: str, body_lines: list[str], ctx: Context) -> str:
    options, body_lines = split_options(body_lines)
    body = convert_markdown("\n".join(body_lines), ctx)
    title = convert_roles(arg, ctx) if arg else ""
    label = ctx.book.labels.get(options.get("label", "") or options.get("name", ""))
    if name == "exercise":
        head = label.text if label else "Exercise"
        head += f" ({title})" if title else ""
        return f"**{head}.**\n\n{body}"
    if name == "solution":
        if ctx.student:
            return ""
        target = ctx.book.labels.get(arg)
        what = f"Solution to {target.text}" if target else "Solution"
        return f"<details>\n<summary>{what}</summary>\n\n{body}\n\n</details>"
    if name in ("solution-start", "solution-end"):
        if name == "solution-end":
            return ""
        target = ctx.book.labels.get(arg)
        return f"**Solution to {target.text if target else 'the exercise'}.**"
    if name == "prf:proof":
        return f"*Proof.* {body} ∎" if "\n" not in body else f"*Proof.*\n\n{body}\n\n∎"
    if name.startswith("prf:"):
        kind = name[4:].capitalize()
        head = label.text if label else kind
        head += f" ({title})" if title else ""
        return f"**{head}.**\n\n{body}"
    if name == "admonition":
        return quoted(f"**{title}**\n\n{body}")
    if name in ADMONITIONS:
        return quoted(f"**{title or ADMONITIONS[name]}**\n\n{body}")
    if name in ("glue:figure", "figure"):
        caption = body.strip()
        number = label.text if label else "Figure"
        image = ""
        if name == "figure":
            image = f"![{options.get('alt', caption)}]({arg})\n\n"
        return f"{image}**{number}.** {caption}".rstrip()
    if name == "math":
        return f"$$\n{body}\n$$"
    if name in ("code-block", "code", "sourcecode", "code-cell"):
        return f"```{arg}\n" + "\n".join(body_lines) + "\n```"
    if name in ("dropdown", "toggle"):
        return f"<details>\n<summary>{title or 'Show'}</summary>\n\n{body}\n\n</details>"
    if name == "only":
        wanted = arg.replace(" ", "")
        is_student = ctx.student
        show = {"student": is_student, "notstudent": not is_student}.get(wanted, True)
        return body if show else ""
    if name == "list-table":
        return list_table(body_lines, options, ctx)
    if name in DROPPED:
        return ""
    return f"**{title}**\n\n{body}" if title else body


def list_table(body_lines: list[str], options: dict, ctx: Context) -> str:
    rows, row = [], None
    for line in body_lines:
        if line.startswith("* - "):
            row = [line[4:]]
            rows.append(row)
        elif line.startswith("  - ") and row is not None:
            row.append(line[4:])
        elif line.startswith("    ") and row is not None:
            row[-1] += " " + line.strip()
    cells = [[convert_roles(c, ctx).replace("|", "\\|") for c in r] for r in rows]
    if not cells:
        return ""
    out = ["| " + " | ".join(cells[0]) + " |", "|" + "---|" * len(cells[0])]
    out += ["| " + " | ".join(r) + " |" for r in cells[1:]]
    return "\n".join(out)


# ---------------------------------------------------------------------------------------
# Notebooks

def is_macros_cell(cell: dict) -> bool:
    return cell["cell_type"] == "markdown" and text(cell["source"]).lstrip().startswith("---")


def gate(cell: dict, which: str) -> bool:
    return cell["cell_type"] == "markdown" and f"{{solution-{which}}}" in text(cell["source"])


GLUE_ONLY = "application/papermill.record/"      # myst-nb's hidden copies: no viewer shows them


def convert_outputs(cell: dict, macros: dict) -> None:
    cell["outputs"] = [o for o in cell.get("outputs", []) if not o.get("data") or
                       not all(k.startswith(GLUE_ONLY) for k in o["data"])]
    for output in cell["outputs"]:
        data = output.get("data", {})
        for mime in ("text/markdown", "text/latex"):
            if mime in data:
                data[mime] = expand_macros(text(data[mime]), macros)


def convert_notebook(nb: dict, doc: str, book: Book, student: bool) -> dict:
    ctx = Context(book, doc, student)
    nb = copy.deepcopy(nb)
    cells, gated = [], False
    for cell in nb["cells"]:
        if is_macros_cell(cell):
            continue
        if gate(cell, "start"):
            gated = True
        if gated and student:
            if gate(cell, "end"):
                gated = False
            continue
        if gate(cell, "end"):
            gated = False
        tags = cell.get("metadata", {}).get("tags", [])
        if cell["cell_type"] == "markdown":
            converted = convert_markdown(text(cell["source"]), ctx)
            if not converted.strip():
                continue
            cell["source"] = converted
            cell.get("metadata", {}).pop("tags", None)
        elif cell["cell_type"] == "code":
            convert_outputs(cell, book.macros)
            if {"hide-input", "remove-input", "remove-cell", "hide-cell"} & set(tags):
                # folded as in the book: JupyterLab and VS Code read this flag
                cell.setdefault("metadata", {}).setdefault("jupyter", {})["source_hidden"] = True
        cells.append(cell)
    if ctx.cited:
        cells.append({"cell_type": "markdown", "id": "references", "metadata": {},
                      "source": references_cell(book, ctx.cited)})
    nb["cells"] = cells
    nb.setdefault("metadata", {}).pop("mystnb", None)
    nb["metadata"].pop("jupytext", None)
    return nb


def chapters(book: Book) -> list[str]:
    return [doc for doc, _ in toc_docs(book.root)
            if (book.root / f"{doc}.ipynb").exists()]


def write_edition(out: Path, root: Path = ROOT, variants=("full", "student"),
                  keep_existing: bool = False) -> list[Path]:
    """Write ``out/NAME.ipynb`` (full) and ``out/student/NAME.ipynb``; return the paths.
    With ``keep_existing`` a notebook already there is left as it is (a reader's copy)."""
    book = load_book(root)
    written = []
    for variant in variants:
        folder = out if variant == "full" else out / "student"
        folder.mkdir(parents=True, exist_ok=True)
        for doc in chapters(book):
            nb = json.loads((root / f"{doc}.ipynb").read_text(encoding="utf-8"))
            converted = convert_notebook(nb, doc, book, student=variant == "student")
            path = folder / Path(doc).with_suffix(".ipynb").name
            if keep_existing and path.exists():
                continue
            path.write_text(json.dumps(converted, indent=1, ensure_ascii=False) + "\n",
                            encoding="utf-8")
            written.append(path)
    return written


# ---------------------------------------------------------------------------------------
# Sphinx: write the edition into the HTML build

def _write_into_site(app, exc):
    if exc is not None or app.builder.format != "html":
        return
    student = app.config.compattn_edition == "student"
    out = Path(app.outdir) / "notebooks"
    write_edition(out, Path(app.srcdir), variants=("student",) if student else
                  ("full", "student"))
    if student:     # the student site's notebooks are the student variant, at one path
        for path in (out / "student").glob("*.ipynb"):
            path.replace(out / path.name)
        (out / "student").rmdir()


def setup(app):
    if "compattn_edition" not in app.config.values:
        app.add_config_value("compattn_edition", "full", "env")
    # before _ext/book_site.py rewrites the repository address in what the build wrote
    app.connect("build-finished", _write_into_site, priority=400)
    return {"parallel_read_safe": True, "parallel_write_safe": True}


if __name__ == "__main__":
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    keep = "--keep-existing" in sys.argv
    target = Path(args[0]) if args else ROOT / "_build" / "notebooks"
    paths = write_edition(target, keep_existing=keep)
    print(f"notebook edition: {len(paths)} notebooks written to {target} (student variant in "
          f"{target / 'student'})" + ("; notebooks already there were kept" if keep else ""))
