"""Readers for the file formats the data ships in, with the standard library only.

* SWORD zText Bible modules (zlib blocks + a fixed-size verse index)
* R's serialised data (``Rdata.rdb``/``.rdx``): enough of the XDR format for character vectors
* dictd ``.dict.dz`` files (gzip-readable) with their ``.index``
* fortune cookie files (``%``-separated)
* the WordNet 3.0 database (``data.noun`` ...)
* VADER's human-rated sentences (tab-separated, inside the sdist)
"""
from __future__ import annotations

import gzip
import re
import struct
import io
import tarfile
import zlib
from pathlib import Path

# --- SWORD zText ----------------------------------------------------------------------------------


def sword_verses(module_dir: Path):
    """Yield the raw OSIS text of every verse slot of a zText module, in canonical order."""
    for testament in ("ot", "nt"):
        blocks = (module_dir / f"{testament}.bzs").read_bytes()
        verses = (module_dir / f"{testament}.bzv").read_bytes()
        data = (module_dir / f"{testament}.bzz").read_bytes()
        block_table = [struct.unpack_from("<III", blocks, i) for i in range(0, len(blocks), 12)]
        cache: dict[int, bytes] = {}
        for start in range(0, len(verses), 10):
            block, offset, size = struct.unpack_from("<IIH", verses, start)
            if size == 0:
                yield ""
                continue
            if block not in cache:
                cache.clear()  # blocks are read in order: keep only the current one
                pos, compressed, _ = block_table[block]
                cache[block] = zlib.decompress(data[pos:pos + compressed])
            yield cache[block][offset:offset + size].decode("utf-8", errors="replace")


_OSIS_DROP = re.compile(r"<(note|title)\b[^>]*>.*?</\1>", re.S)
_TAG = re.compile(r"<[^>]+>")
_BOOK_START = re.compile(r'<div\b(?=[^>]*type="book")(?=[^>]*\ssID=)[^>]*>')   # \s: not osisID=
_CHAPTER_START = re.compile(r'<chapter\b(?=[^>]*\ssID=)[^>]*>')


def osis_to_text(raw: str) -> str:
    """Verse text without notes, titles, Strong's numbers or other markup."""
    text = _TAG.sub("", _OSIS_DROP.sub(" ", raw)).replace("¶", " ")
    return re.sub(r"\s+", " ", text).strip()


def bible_books(module_dir: Path) -> list[list[str]]:
    """Books as lists of chapter paragraphs (the verses of a chapter joined)."""
    books, chapter, current = [], [], None
    for raw in sword_verses(module_dir):
        if _BOOK_START.search(raw):
            if chapter and current is not None:
                current.append(" ".join(chapter))
            chapter = []
            current = []
            books.append(current)
        elif _CHAPTER_START.search(raw) and chapter and current is not None:
            current.append(" ".join(chapter))
            chapter = []
        text = osis_to_text(raw)
        if text:
            chapter.append(text)
    if chapter and current is not None:
        current.append(" ".join(chapter))
    return [b for b in books if b]


# --- R serialisation (XDR), enough for character vectors ---------------------------------------
class _RReader:
    NILVALUE, REF, GLOBALENV, EMPTYENV, BASEENV, MISSINGARG, UNBOUND, BASENAMESPACE = (
        254, 255, 253, 242, 241, 251, 252, 247)

    def __init__(self, data: bytes):
        if data[:2] not in (b"X\n",):
            raise ValueError("not an R XDR serialisation (expected 'X\\n')")
        self.data, self.pos, self.refs = data, 2, []
        version = self.int()
        self.int(), self.int()  # writer and minimal reader versions
        if version == 3:
            length = self.int()  # then the native encoding's name
            self.pos += length

    def int(self) -> int:
        value = struct.unpack_from(">i", self.data, self.pos)[0]
        self.pos += 4
        return value

    def read(self):
        flags = self.int()
        kind, has_attr, has_tag = flags & 0xFF, bool(flags & (1 << 9)), bool(flags & (1 << 10))
        if kind in (self.NILVALUE, self.GLOBALENV, self.EMPTYENV, self.BASEENV, self.MISSINGARG,
                    self.UNBOUND, self.BASENAMESPACE):
            return None
        if kind == self.REF:
            return self.refs[(flags >> 8) - 1]
        if kind == 1:  # SYMSXP
            name = self.read()
            self.refs.append(name)
            return name
        if kind in (2, 6):  # LISTSXP, LANGSXP: pairlist -> dict (tagged) or list
            items = {}
            while kind in (2, 6):
                attr = self.read() if has_attr else None  # noqa: F841  (attributes of the cell)
                tag = self.read() if has_tag else len(items)
                items[tag] = self.read()
                flags = self.int()
                kind, has_attr, has_tag = flags & 0xFF, bool(flags & (1 << 9)), bool(flags & (1 << 10))
            return items
        if kind == 9:  # CHARSXP
            n = self.int()
            if n == -1:
                return None
            s = self.data[self.pos:self.pos + n].decode("utf-8", errors="replace")
            self.pos += n
            return s
        if kind in (10, 13):  # LGLSXP, INTSXP
            n = self.int()
            values = list(struct.unpack_from(f">{n}i", self.data, self.pos))
            self.pos += 4 * n
        elif kind == 14:  # REALSXP
            n = self.int()
            values = list(struct.unpack_from(f">{n}d", self.data, self.pos))
            self.pos += 8 * n
        elif kind in (16, 19, 20):  # STRSXP, VECSXP, EXPRSXP
            n = self.int()
            values = [self.read() for _ in range(n)]
        else:
            raise ValueError(f"unsupported R object type {kind} in serialised data")
        if has_attr:
            attributes = self.read()
            if isinstance(attributes, dict) and "names" in attributes and kind == 19:
                return dict(zip(attributes["names"], values))
        return values


def r_lazyload(rdb: Path) -> dict:
    """All objects of an R lazy-load database ``Rdata.rdb`` (with its ``Rdata.rdx``)."""
    def unpack(blob: bytes):  # 4-byte length, then a zlib stream
        return _RReader(zlib.decompress(blob[4:])).read()

    index = _RReader(gzip.decompress(rdb.with_suffix(".rdx").read_bytes())).read()  # an .rds file
    data = rdb.read_bytes()
    objects = {}
    for name, (offset, length) in index["variables"].items():
        objects[name] = unpack(data[offset:offset + length])
    return objects


# --- dictd and fortune files ----------------------------------------------------------------------
_B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"


def _b64_number(s: str) -> int:
    n = 0
    for ch in s:
        n = n * 64 + _B64.index(ch)
    return n


def dictd_entries(dict_dz: Path) -> list[tuple[str, str]]:
    """(headword, text) for every entry of a dictd database."""
    text = gzip.decompress(dict_dz.read_bytes())
    entries = []
    for line in dict_dz.with_name(dict_dz.name.replace(".dict.dz", ".index")).read_text("utf-8").splitlines():
        parts = line.split("\t")
        if len(parts) < 3 or parts[0].startswith(("00-database", "00database")):
            continue  # the database's header entries (its info entry holds the preface)
        start, size = _b64_number(parts[1]), _b64_number(parts[2])
        entries.append((parts[0], text[start:start + size].decode("utf-8", errors="replace")))
    return entries


_OVERSTRUCK = re.compile(r"[^\x08\n]\x08")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def strip_controls(text: str) -> str:
    """Text as a terminal would show it: each backspace erases the character before it
    (``____^H^H^H^HBODY`` -> ``BODY``), then other control characters (bells, form feeds,
    escapes) are dropped.  Tabs and newlines stay."""
    while True:
        erased = _OVERSTRUCK.sub("", text)
        if erased == text:
            break
        text = erased
    return _CONTROL.sub("", text)


def normalised(text: str) -> str:
    """``text`` lower-cased, without punctuation, spaces or symbols (emoji): two sentences that
    differ only in case and punctuation (``"Great movie!!"``, ``"great movie."``) are one."""
    return re.sub(r"[\W_]+", "", text.lower())


def fortunes(path: Path) -> list[str]:
    """The cookies of one fortune file, each as one paragraph, without control characters."""
    raw = strip_controls(path.read_text("utf-8", errors="replace"))
    return [re.sub(r"\s+", " ", c).strip() for c in raw.split("\n%\n") if c.strip()]


# --- WordNet 3.0 -----------------------------------------------------------------------------------
LEXNAMES = [
    "adj.all", "adj.pert", "adv.all", "noun.Tops", "noun.act", "noun.animal", "noun.artifact",
    "noun.attribute", "noun.body", "noun.cognition", "noun.communication", "noun.event",
    "noun.feeling", "noun.food", "noun.group", "noun.location", "noun.motive", "noun.object",
    "noun.person", "noun.phenomenon", "noun.plant", "noun.possession", "noun.process",
    "noun.quantity", "noun.relation", "noun.shape", "noun.state", "noun.substance", "noun.time",
    "verb.body", "verb.change", "verb.cognition", "verb.communication", "verb.competition",
    "verb.consumption", "verb.contact", "verb.creation", "verb.emotion", "verb.motion",
    "verb.perception", "verb.possession", "verb.social", "verb.stative", "verb.weather", "adj.ppl",
]
POS_NAMES = {"n": "noun", "v": "verb", "a": "adj", "s": "adj", "r": "adv"}


#: what introduces an example and is left dangling once the example is cut off
_LEAD_IN = re.compile(r"(?:[\s,;:(]+|\b(?:e\.g\.|i\.e\.|as in|as|especially|"
                      r"in the phrase|in the expression|usually expressed)(?!\w))+$")


def definition_of(gloss: str) -> str:
    """The definition of a WordNet gloss, without its quoted examples.

    A gloss is a definition followed by examples in double quotes, but not always neatly:
    an example after a colon or a comma (``remove or withdraw gradually: "These new ..."``),
    one with a ``;`` inside (``"she liked the old cottage; its quaintness was appealing"``),
    a phrase quoted inside the definition (``a demand especially in the phrase "the call of
    duty"``), an example whose opening quote is missing (``close in; darkness enclosed
    him"``).  So the definition is what comes before the first quote; when that quote closes
    an example (it follows a word, not a space or ``:``), the example began after the last
    ``;``.  The lead-in a cut leaves behind (``e.g.``, ``as in``, an open parenthesis) goes too.
    A gloss whose definition is only a qualifier (``(of a ball) "a ball that is out of play
    is dead"``) has none: ``""``.
    """
    text = gloss.strip()
    quote = text.find('"')
    if quote >= 0:
        text = text[:quote]
        closing = quote > 0 and not text[-1].isspace() and text[-1] not in ":(,;"
        if closing and ";" in text:
            text = text[:text.rindex(";")]
        text = _LEAD_IN.sub("", re.sub(r"\([^)]*$", "", text))
    text = re.sub(r"\s+", " ", text).strip(" ;,:")
    return text if re.sub(r"\([^)]*\)", "", text).strip() else ""   # '(of a ball)' alone: none


def wordnet_synsets(wordnet_dir: Path):
    """Yield dicts (offset, pos, lexname, lemmas, definition, examples) for every synset."""
    for part in ("noun", "verb", "adj", "adv"):
        for line in (wordnet_dir / f"data.{part}").read_text("utf-8", errors="replace").splitlines():
            if line.startswith("  "):
                continue  # licence header
            head, _, gloss = line.partition(" | ")
            fields = head.split()
            n_words = int(fields[3], 16)
            lemmas = [fields[4 + 2 * i].lower() for i in range(n_words)]
            lemmas = [re.sub(r"\(.*\)$", "", w) for w in lemmas]
            definition = definition_of(gloss)
            examples = [p.strip('" ') for p in re.findall(r'"[^"]+"', gloss)]
            yield {"offset": fields[0], "pos": POS_NAMES[fields[2]], "lexname": LEXNAMES[int(fields[1])],
                   "lemmas": lemmas, "definition": definition, "examples": examples}


# --- VADER -------------------------------------------------------------------------------------------
VADER_DOMAINS = {"movieReviewSnippets": "movie", "nytEditorialSnippets": "nyt",
                 "tweets": "tweets", "amazonReviewSnippets": "amazon"}


def vader_sentences(sdist: Path) -> list[dict]:
    """Every human-rated sentence: {domain, id, score (-4..4), text}."""
    with tarfile.open(sdist) as outer:
        member = next(m for m in outer.getmembers() if m.name.endswith("hutto_ICWSM_2014.tar.gz"))
        inner_bytes = outer.extractfile(member).read()
    rows = []
    with tarfile.open(fileobj=io.BytesIO(inner_bytes)) as inner:
        for member in sorted(inner.getmembers(), key=lambda m: m.name):
            name = Path(member.name).name
            domain = next((d for key, d in VADER_DOMAINS.items() if name.startswith(key)), None)
            if domain is None or not name.endswith("GroundTruth.txt"):
                continue
            for line in inner.extractfile(member).read().decode("utf-8", errors="replace").splitlines():
                parts = line.split("\t")
                if len(parts) >= 3:
                    rows.append({"domain": domain, "id": parts[0].strip(), "score": float(parts[1]),
                                 "text": re.sub(r"\s+", " ", parts[2]).strip()})
    return rows

