"""The PDF as the website is: two LaTeX documents from one Sphinx run, ``compattn.tex``
(the book, with the exercises' solutions in an appendix) and ``compattn-student.tex``
(the student edition, without them).

Sphinx's LaTeX builder joins every page into one tree in the order of the table of
contents and writes each top-level section as a chapter.  Left alone, the landing page's
four sections and the course map and notation pages become chapters 1-6, web chapter 3
becomes chapter 9 while its theorem still says 3.1, the Parts vanish, and every solution
is printed under its exercise.  Here the joined tree is rearranged before it is written:

* **front matter**: the landing page (one chapter, "About this book", its sections inside
  it), the course map and the notation, unnumbered;
* **Parts**: ``\\part{Derivations}`` and so on before the first chapter of each numbered
  part of ``_toc.yml``, so the chapters are numbered 1-13 as on the website, and with them
  the theorems, exercises, figures and equations (Sphinx numbers those per chapter);
* **solutions**: moved out of the chapters into an appendix, "Solutions to the exercises",
  one section per chapter, each exercise pointing to its solution's page; the student
  document drops them, and builds with the Sphinx tag ``student`` (``{only} not student``
  text stays out of it);
* **back matter**: glossary and bibliography, unnumbered;
* **proofs** without the empty title bar sphinx-proof gives them (its admonition has no
  title), ending in a square;
* **wide outputs**: a displayed SymPy result wider than the page is shrunk to its width
  (``adjustbox``) instead of running off the page;
* no "Proof Index" of raw labels, and the table of contents is called "Contents".

``scripts/pdf`` runs LaTeX on both documents.
"""
from __future__ import annotations

import re
from pathlib import Path

import yaml
from docutils import nodes
from sphinx import addnodes
from sphinx.builders.latex import LaTeXBuilder

STUDENT_SUFFIX = "-student.tex"
APPENDIX_TITLE = "Solutions to the exercises"
PART_PREFIX = re.compile(r"^Part\s+[IVXLC]+\s*:\s*")
UNNUMBERED, NUMBERED = r"\setcounter{secnumdepth}{-1}", r"\setcounter{secnumdepth}{2}"


def raw(latex: str) -> nodes.raw:
    return nodes.raw("", latex + "\n", format="latex")


def toc_parts(toc_path: Path) -> list[dict]:
    """The parts of the table of contents: caption, whether numbered, and their documents
    (a table without parts, as ``scripts/pdf book/NAME.ipynb`` writes, is one numbered part
    without a caption)."""
    toc = yaml.safe_load(toc_path.read_text())
    if not toc.get("parts"):
        toc["parts"] = [{"caption": "", "numbered": True, "chapters": toc.get("chapters", [])}]
    parts = []
    for part in toc.get("parts", []):
        docs = []

        def walk(entries):
            for item in entries or []:
                if "file" in item:
                    docs.append(item["file"])
                walk(item.get("sections"))

        walk(part.get("chapters"))
        parts.append({"caption": part.get("caption", ""), "numbered": bool(part.get("numbered")),
                      "docs": docs})
    return parts


def is_solution(node) -> bool:
    return type(node).__name__ == "solution_node"


def is_exercise(node) -> bool:
    return type(node).__name__ in ("exercise_enumerable_node", "exercise_node")


def is_proof(node) -> bool:
    return type(node).__name__ == "proof_node"


class BookLaTeXBuilder(LaTeXBuilder):
    """Sphinx's LaTeX builder, with each joined tree rearranged as described above."""

    def init(self):
        super().init()
        self._documents_written = 0

    def init_document_data(self) -> None:
        # the student document is added here, not in latex_documents: Jupyter Book
        # replaces that setting (one document) after Sphinx has read the configuration
        super().init_document_data()
        if self.config.compattn_edition == "full" and self.document_data and not any(
                entry[1].endswith(STUDENT_SUFFIX) for entry in self.document_data):
            docname, target, title, author, theme, *rest = self.document_data[0]
            self.document_data.append((docname, target[:-4] + STUDENT_SUFFIX,
                                       f"{title} (student edition)", author, theme, *rest))

    def get_contentsname(self, indexfile: str) -> str:
        return ""       # LaTeX's own "Contents", not the caption of the first part

    def assemble_doctree(self, indexfile, toctree_only, appendices):
        # the documents are assembled in the order of latex_documents; which one this is
        # decides the tag before Sphinx resolves the {only} blocks (inside this call)
        target = self.document_data[self._documents_written][1]
        self._documents_written += 1
        student = target.endswith(STUDENT_SUFFIX) or self.config.compattn_edition == "student"
        if student:
            self.tags.add("student")
        elif "student" in self.tags:
            self.tags.remove("student")
        tree = super().assemble_doctree(indexfile, toctree_only, appendices)
        toc = Path(self.srcdir, getattr(self.config, "external_toc_path", "_toc.yml") or "_toc.yml")
        arrange(tree, indexfile, toc_parts(toc), student, self.env)
        return tree


def chapter_of(node) -> str | None:
    """The page a node comes from.  (Sphinx gives each page's sections a ``docname``; the
    joined tree's ``start_of_file`` nodes do not reach: Sphinx hands them the children of
    each page without re-parenting them.)"""
    while node is not None:
        if isinstance(node, nodes.section) and node.get("docname"):
            return node["docname"]
        node = node.parent
    return None


def arrange(tree: nodes.document, root_doc: str, parts: list[dict], student: bool, env) -> None:
    root = next(iter(tree.findall(nodes.section)), None)
    if root is None:
        return
    files = {f["docname"]: f for f in tree.findall(addnodes.start_of_file)
             if isinstance(f.parent, nodes.compound) and f.parent.parent is root}
    # 1. the landing page's own text becomes one unnumbered chapter
    about = nodes.section(ids=["about-this-book"], names=["about this book"])
    about += nodes.title(text="About this book")
    for child in list(root.children[1:]):
        if isinstance(child, nodes.compound) and "toctree-wrapper" in child.get("classes", []):
            continue
        root.remove(child)
        about += child
    root.insert(1, about)
    order = [raw(UNNUMBERED), about]
    # 2. parts in the order of _toc.yml, the numbered ones as \part
    numbered_seen = False
    solutions_at = None
    for part in parts:
        # an empty page is left out: the bibliography's, whose citations Sphinx has moved
        # into one bibliography at the end of the LaTeX document, under its own title
        docs = [files[d] for d in part["docs"] if d in files and not is_empty_page(files[d])]
        if not docs:
            continue
        if part["numbered"]:
            if not numbered_seen:
                order.append(raw(NUMBERED + r"\setcounter{chapter}{0}"))
                numbered_seen = True
            if part["caption"]:
                order.append(raw(r"\part{%s}" % latex_escape(PART_PREFIX.sub("", part["caption"]))))
        elif numbered_seen and solutions_at is None:
            solutions_at = len(order)       # after the last numbered part
            order.append(raw(UNNUMBERED))
        order.extend(docs)
    placed = {id(node) for node in order}
    order.extend(f for f in files.values() if id(f) not in placed and not is_empty_page(f))
    if numbered_seen and solutions_at is None:
        solutions_at = len(order)
    # the toctree wrappers are emptied; the files now sit in the root section in order
    for wrapper in [c for c in root.children
                    if isinstance(c, nodes.compound) and "toctree-wrapper" in c.get("classes", [])]:
        root.remove(wrapper)
    root.children = root.children[:1]          # the title; Sphinx uses it as the book's
    for node in order:
        node.parent = None
    root.extend(order)
    # 3. solutions: into an appendix, or (student) nowhere
    appendix = solutions_appendix(tree, student, env)
    if appendix is not None and solutions_at is not None:
        index = root.index(order[solutions_at]) if solutions_at < len(order) else len(root)
        root.insert(index, [raw(r"\appendix" + NUMBERED), appendix])
    # 4. proofs without an empty title bar
    for proof in list(tree.findall(is_proof)):
        proof.replace_self([raw(r"\par\medskip"), *proof_body(proof),
                            raw(r"\nopagebreak\hfill$\square$\par\medskip")])
    # 5. {numref} to an exercise: sphinx-exercise labels exercises exercise:LABEL in LaTeX,
    # where Sphinx's number reference looks for DOC:LABEL (and finds nothing)
    registry = getattr(env, "sphinx_exercise_registry", {})
    for ref in list(tree.findall(addnodes.number_reference)):
        label = ref.get("refid") or ref.get("refuri", "").rpartition("#")[2]
        if label in registry:
            ref.replace_self(raw(r"\hyperref[exercise:%s]{%s}" % (label, latex_escape(ref.astext()))))
    # 6. wide displayed outputs shrink to the page
    for block in list(tree.findall(nodes.math_block)):
        if in_cell_output(block):
            block.replace_self(raw(r"\par\noindent\begin{adjustbox}{max width=\linewidth,center}"
                                   r"$\displaystyle " + strip_display(block.astext()) +
                                   r"$\end{adjustbox}\par"))


def proof_body(proof) -> list:
    """The proof's paragraphs, the "Proof. " that sphinx-proof puts before them in italics."""
    box = proof[0] if len(proof) == 1 and isinstance(proof[0], nodes.admonition) else proof
    body = [child.deepcopy() for child in box.children if not isinstance(child, nodes.title)]
    first = body[0] if body and isinstance(body[0], nodes.paragraph) else None
    if first is not None and first.children and isinstance(first[0], nodes.Text):
        text = str(first[0])
        if text.startswith("Proof. "):
            first.replace(first[0], nodes.Text(text[len("Proof. "):]))
            first.insert(0, [nodes.emphasis(text="Proof."), nodes.Text(" ")])
    return body


def is_empty_page(start_of_file) -> bool:
    """Nothing but a title, targets and empty containers."""
    for node in start_of_file.findall(nodes.Element):
        if isinstance(node, (addnodes.start_of_file, nodes.section, nodes.title, nodes.target)):
            continue
        if isinstance(node, nodes.container) and not node.children:
            continue
        if any(isinstance(a, nodes.title) for a in ancestors(node)):
            continue
        return False
    return True


def ancestors(node):
    node = node.parent
    while node is not None:
        yield node
        node = node.parent


def in_cell_output(node) -> bool:
    while node is not None:
        if "cell_output" in node.get("classes", []) if isinstance(node, nodes.Element) else False:
            return True
        node = node.parent
    return False


def strip_display(latex: str) -> str:
    latex = latex.strip()
    latex = re.sub(r"^\$+|\$+$", "", latex).strip()
    return latex.replace(r"\displaystyle", "", 1).strip()


def latex_escape(text: str) -> str:
    return re.sub(r"([&%$#_{}])", r"\\\1", text)


def solutions_appendix(tree, student: bool, env) -> nodes.section | None:
    solutions = list(tree.findall(is_solution))
    if student:
        for solution in solutions:
            solution.parent.remove(solution)
        return None
    if not solutions:
        return None
    appendix = nodes.section(ids=["solutions-to-the-exercises"], names=[APPENDIX_TITLE.lower()])
    appendix += nodes.title(text=APPENDIX_TITLE)
    by_chapter: dict[str, nodes.section] = {}
    exercises = {e.get("label"): e for e in tree.findall(is_exercise)}
    for solution in solutions:
        doc = chapter_of(solution) or ""
        if doc not in by_chapter:
            numbers = env.toc_secnumbers.get(doc, {}).get("")
            title = env.titles[doc].astext() if doc in env.titles else doc
            heading = f"Chapter {'.'.join(map(str, numbers))}: {title}" if numbers else title
            section = nodes.section(ids=[f"solutions-{doc.replace('/', '-')}"], names=[heading.lower()])
            section += nodes.title(text=heading)
            by_chapter[doc] = section
            appendix += section
        target = solution.get("target_label", "")
        solution.parent.remove(solution)
        by_chapter[doc] += raw(r"\phantomsection\label{solution:%s}" % target)
        by_chapter[doc] += solution
        exercise = exercises.get(target)
        if exercise is not None and exercise.parent is not None:
            exercise.parent.insert(exercise.parent.index(exercise) + 1, raw(
                r"\par\noindent{\small\itshape Solution: \hyperref[solution:%s]{page~\pageref*{solution:%s}}}\par"
                % (target, target)))
    return appendix


PREAMBLE = r"""
% _ext/latex_book.py: wide outputs shrink to the page
\usepackage{adjustbox}
"""


def _configure(app, config):
    elements = dict(config.latex_elements or {})
    elements["preamble"] = elements.get("preamble", "") + PREAMBLE
    config.latex_elements = elements
    config.latex_domain_indices = False


def setup(app):
    if "compattn_edition" not in app.config.values:
        app.add_config_value("compattn_edition", "full", "env")
    app.add_builder(BookLaTeXBuilder, override=True)
    app.connect("config-inited", _configure, priority=950)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
