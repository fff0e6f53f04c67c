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
from .build import TASKS, austen_novels, devil_entries, source_files, write_task
from .tokenizer import train_tokenizer

NOVELS = ("persuasion", "northangerabbey")           # two of the six, whole
BIBLE_BOOKS = 6                                      # the first books of each Bible
TASK_CAPS = {"train": 3000, "dev": 500, "test": 500}
SAMPLE_VOCAB = 8000


def _gzip(text: str, path: Path):
    path.write_bytes(gzip.compress(text.encode("utf-8"), mtime=0))


def _order(row: dict) -> str:
    return hashlib.sha256(json.dumps(row, sort_keys=True).encode()).hexdigest()


def make_sample(full_dir: Path, out_dir: Path) -> dict:
    full_dir, out_dir = Path(full_dir), Path(out_dir)
    files = source_files(full_dir / "cache")
    novels = austen_novels(files)
    chosen = [novels[name] for name in NOVELS]
    kjv, web = R.bible_books(files["kjv"])[:BIBLE_BOOKS], R.bible_books(files["web"])[1:BIBLE_BOOKS + 1]
    documents = chosen + kjv + web + [devil_entries(files)]
    out_dir.mkdir(parents=True, exist_ok=True)
    text = "\n\n".join("\n".join(doc) for doc in documents) + "\n"
    _gzip(text, out_dir / "corpus.txt.gz")
    counts = {"documents": len(documents), "paragraphs": sum(map(len, documents)),
              "words": sum(len(p.split()) for d in documents for p in d)}
    for name in TASKS:
        rows = []
        for split, cap in TASK_CAPS.items():
            lines = (full_dir / "tasks" / name / f"{split}.jsonl").read_text().splitlines()
            part = sorted((json.loads(line) for line in lines), key=_order)[:cap]
            rows += [{**r, "split": split} for r in part]
        folder = out_dir / "tasks" / name
        write_task(rows, folder)
        for split in TASK_CAPS:
            plain = folder / f"{split}.jsonl"
            _gzip(plain.read_text(), plain.with_suffix(".jsonl.gz"))
            plain.unlink()
    if not (out_dir / "tokenizer.json").exists():   # kept: checkpoints and records name its id
        train_tokenizer(documents, vocab_size=SAMPLE_VOCAB).save(str(out_dir / "tokenizer.json"))
    return counts
