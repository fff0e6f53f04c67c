"""Make the embedded sample (``compattn/data/sample/``) from a full build.

Only public-domain and permissively licensed parts are sampled: Austen's novels, the KJV
and WEB Bibles, the Devil's Dictionary (public domain); WordNet-derived task rows (WordNet
licence, notice kept) and VADER's sentences (MIT).  GCIDE, Wikipedia and the fortunes are
never committed.  Deterministic: rows are chosen by a hash, gzip files carry no timestamp.
"""
from __future__ import annotations

import gzip
import hashlib
import json
from pathlib import Path

from . import readers as R
from .build import (MANIFEST, TASKS, austen_novels, devil_entries, manifest_id, sha256, source_files,
                    write_corpus, write_task)
from .cues import task_measures
from .tokenizer import train_tokenizer

NOVELS = ("persuasion", "northangerabbey")           # two of the six, whole
BIBLE_BOOKS = 6                                      # the first books of each Bible
TASK_CAPS = {"train": 3000, "dev": 500, "test": 500}
SAMPLE_VOCAB = 8000
#: what a sample task's ``info.json`` keeps of the full build's measures (under ``full_build``),
#: so that a chapter run on the sample can show both
FULL_MEASURES = ("counts", "surface_cues", "order_baseline", "unknown_tokens")


def _gzip(text: str, path: Path):
    path.write_bytes(gzip.compress(text.encode("utf-8"), mtime=0))


def _order(row: dict) -> str:
    return hashlib.sha256(json.dumps(row, sort_keys=True).encode()).hexdigest()


def make_sample(full_dir: Path, out_dir: Path) -> dict:
    full_dir, out_dir = Path(full_dir), Path(out_dir)
    files = source_files(full_dir / "cache")
    novels = austen_novels(files)
    documents = {"austen": [(f"austen/{name}", novels[name]) for name in NOVELS],
                 "bible": [(f"bible/{translation}/{i + 1:03d}", book)
                           for translation, first in (("kjv", 0), ("web", 1))
                           for i, book in enumerate(R.bible_books(files[translation]))
                           if first <= i < first + BIBLE_BOOKS],
                 "devil": [("devil/dictionary", devil_entries(files))]}
    out_dir.mkdir(parents=True, exist_ok=True)
    plain = out_dir / "corpus.txt"
    write_corpus(documents, plain)
    _gzip(plain.read_text(encoding="utf-8"), out_dir / "corpus.txt.gz")
    plain.unlink()
    every_document = [doc for docs in documents.values() for _, doc in docs]
    counts = {"documents": len(every_document), "paragraphs": sum(map(len, every_document)),
              "words": sum(len(p.split()) for d in every_document for p in d)}
    from tokenizers import Tokenizer

    # made afresh from the sample's own text, so the sample can be rebuilt byte for byte
    train_tokenizer(every_document, vocab_size=SAMPLE_VOCAB).save(str(out_dir / "tokenizer.json"))
    tokenizer = Tokenizer.from_file(str(out_dir / "tokenizer.json"))
    full = json.loads((full_dir / MANIFEST).read_text())["tasks"]
    for name in TASKS:
        rows = []
        for split, cap in TASK_CAPS.items():
            lines = (full_dir / "tasks" / name / f"{split}.jsonl").read_text().splitlines()
            part = sorted((json.loads(line) for line in lines), key=_order)[:cap]
            rows += [{**r, "split": split} for r in part]
        folder = out_dir / "tasks" / name
        measures = task_measures(rows, tokenizer, order=name == "word_order")
        measures["full_build"] = {key: value for key, value in full[name].items() if key in FULL_MEASURES}
        write_task(rows, folder, measures)
        for split in TASK_CAPS:
            plain = folder / f"{split}.jsonl"
            _gzip(plain.read_text(), plain.with_suffix(".jsonl.gz"))
            plain.unlink()
    listed = sorted(p for p in out_dir.rglob("*") if p.is_file() and p.suffix in (".gz", ".json")
                    and p.name != MANIFEST)
    files = {p.relative_to(out_dir).as_posix(): {"bytes": p.stat().st_size, "sha256": sha256(p)} for p in listed}
    (out_dir / MANIFEST).write_text(json.dumps({"files": files, "id": manifest_id(files)}, indent=1,
                                               sort_keys=True) + "\n")
    return counts


def sample_differences(full_dir: Path) -> list[str]:
    """Make the sample afresh from the build in ``full_dir`` (in a temporary folder) and name
    every file that differs from the embedded one: empty when the sample is reproducible."""
    import tempfile

    from . import SAMPLE_DIR

    with tempfile.TemporaryDirectory() as tmp:
        make_sample(full_dir, Path(tmp))
        fresh = {p.relative_to(tmp).as_posix(): p.read_bytes() for p in Path(tmp).rglob("*") if p.is_file()}
    shipped = {p.relative_to(SAMPLE_DIR).as_posix(): p.read_bytes() for p in SAMPLE_DIR.rglob("*")
               if p.is_file() and p.suffix in (".gz", ".json")}
    return [f"embedded sample: {name} differs from one made from this build" for name in sorted(set(fresh) | set(shipped))
            if fresh.get(name) != shipped.get(name)]
