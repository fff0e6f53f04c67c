"""``{chapter-run-times}``: how long each chapter took to run in this build, by its title.

myst-nb's ``{nb-exec-table}`` lists documents by file name (``book/01_attention_as_mixing``)
with their modification time and the execution method.  This directive keeps what a
reader wants from it -- the chapter, numbered and titled as in the table of contents and
linked, and its run time -- and reads the same execution records, after every notebook
has run.  In a build that runs nothing (``COMPATTN_BOOK_EXECUTE=off``: the PDF, the
student edition) it says so instead of showing an empty table.
"""
from __future__ import annotations

from docutils import nodes
from sphinx import addnodes
from sphinx.transforms.post_transforms import SphinxPostTransform
from sphinx.util.docutils import SphinxDirective

# myst-nb re-renders every page that has this key when a notebook ran again
HAS_TABLE = "has_exec_table"


class RunTimesNode(nodes.General, nodes.Element):
    """Placeholder, replaced once every notebook has run."""


class ChapterRunTimes(SphinxDirective):
    has_content = False

    def run(self):
        from myst_nb.sphinx_ import NbMetadataCollector

        NbMetadataCollector.set_doc_data(self.env, self.env.docname, HAS_TABLE, True)
        return [RunTimesNode()]


def chapter_label(env, docname: str) -> str:
    numbers = env.toc_secnumbers.get(docname, {}).get("")
    title = env.titles[docname].astext()
    return f"{'.'.join(map(str, numbers))}. {title}" if numbers else title


def run_times_table(env, fromdoc: str, records: dict) -> nodes.Node:
    """A lead sentence and the table; or, where nothing ran, a sentence saying so."""
    rows = [(doc, data["exec_data"]) for doc, data in records.items() if data.get("exec_data")]
    order = {doc: i for i, doc in enumerate(_toc_order(env))}
    rows.sort(key=lambda row: order.get(row[0], len(order)))
    if not rows:
        return nodes.paragraph(text="This copy of the book shows the outputs stored in the "
                                    "notebooks; the website gives each chapter's run time, "
                                    "measured every time it is built.")
    lead = nodes.paragraph(text="Measured while this copy of the book was built: the chapters "
                                "run on every build, so the table and the outputs are those "
                                "of the current library.")
    table = nodes.table(classes=["colwidths-auto"])
    group = nodes.tgroup(cols=2)
    table += group
    for _ in range(2):
        group += nodes.colspec(colwidth=1)
    head = nodes.thead()
    group += head
    head += nodes.row("", *[nodes.entry("", nodes.paragraph(text=t))
                            for t in ("Chapter", "Run time (s)")])
    body = nodes.tbody()
    group += body
    for doc, data in rows:
        link = addnodes.pending_xref("", refdoc=fromdoc, reftarget="/" + doc, reftype="doc",
                                     refdomain="std", refexplicit=True, refwarn=True)
        link += nodes.inline(text=chapter_label(env, doc))
        runtime = "–" if data.get("runtime") is None else f"{data['runtime']:.0f}"
        body += nodes.row("", nodes.entry("", nodes.paragraph("", "", link)),
                          nodes.entry("", nodes.paragraph(text=runtime)))
    container = nodes.container()
    container += [lead, table]
    return container


def _toc_order(env) -> list[str]:
    """Every document in the order of the table of contents."""
    order, seen = [], set()

    def walk(doc):
        if doc in seen:
            return
        seen.add(doc)
        order.append(doc)
        for child in env.toctree_includes.get(doc, []):
            walk(child)

    walk(env.config.root_doc)
    return order


class RunTimesTransform(SphinxPostTransform):
    default_priority = 8    # before the references are resolved (10)

    def run(self, **kwargs):
        from myst_nb.sphinx_ import NbMetadataCollector

        for node in list(self.document.findall(RunTimesNode)):
            node.replace_self(run_times_table(self.env, self.env.docname,
                                              NbMetadataCollector.get_doc_data(self.env)))


def setup(app):
    app.add_node(RunTimesNode)
    app.add_directive("chapter-run-times", ChapterRunTimes)
    app.add_post_transform(RunTimesTransform)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
