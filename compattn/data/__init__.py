"""Real English text and labelled tasks, offline.

Two places data can come from:

* the **embedded sample** in ``compattn/data/sample/`` -- public-domain text (Austen, the
  KJV and World English Bibles, Bierce) and capped samples of the six tasks, with their
  licences; it ships with the library, so the book, the tests and CI never fetch anything;
* the **full build** made by ``python -m compattn data`` under ``$COMPATTN_DATA``
  (default ``~/.cache/compattn``): 17 MB of text and the complete tasks.
"""
from __future__ import annotations

import gzip
import json
import os
from pathlib import Path

from .build import TASKS

SAMPLE_DIR = Path(__file__).parent / "sample"


def data_dir() -> Path:
    """Where ``python -m compattn data`` builds (``$COMPATTN_DATA`` or ``~/.cache/compattn``)."""
    default = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "compattn"
    return Path(os.environ.get("COMPATTN_DATA", default))


def full_data_available() -> bool:
    return (data_dir() / "manifest.json").exists()


def _resolve(source: str) -> str:
    if source not in ("auto", "sample", "full"):
        raise ValueError(f"source must be 'auto', 'sample' or 'full', got {source!r}")
    if source == "auto":
        return "full" if full_data_available() else "sample"
    if source == "full" and not full_data_available():
        raise ValueError(f"no full data under {data_dir()}; run `python -m compattn data` first "
                         "(or use source='sample', the embedded sample)")
    return source


def _read_text(path: Path) -> str:
    raw = path.read_bytes()
    if path.suffix == ".gz":
        raw = gzip.decompress(raw)
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise ValueError(f"{path} is not UTF-8 text ({err})") from None


def load_corpus(source: str = "auto") -> list[list[str]]:
    """Pre-training text as documents, each a list of paragraphs."""
    source = _resolve(source)
    path = SAMPLE_DIR / "corpus.txt.gz" if source == "sample" else data_dir() / "corpus.txt"
    documents, current = [], []
    for line in _read_text(path).split("\n"):
        if line.strip():
            current.append(line.strip())
        elif current:
            documents.append(current)
            current = []
    if current:
        documents.append(current)
    if not documents:
        raise ValueError(f"{path} holds no text")
    return documents


def load_task(name: str, split: str, source: str = "auto") -> list[dict]:
    """Rows ``{"text", ["text_b"], "label", ...}`` of one split of a downstream task."""
    if name not in TASKS:
        raise ValueError(f"unknown task {name!r}; the tasks are {', '.join(TASKS)}")
    if split not in ("train", "dev", "test"):
        raise ValueError(f"split must be 'train', 'dev' or 'test', got {split!r}")
    source = _resolve(source)
    folder = (SAMPLE_DIR / "tasks" if source == "sample" else data_dir() / "tasks") / name
    path = folder / (f"{split}.jsonl.gz" if source == "sample" else f"{split}.jsonl")
    return [json.loads(line) for line in _read_text(path).splitlines() if line.strip()]


def task_info(name: str, source: str = "auto") -> dict:
    if name not in TASKS:
        raise ValueError(f"unknown task {name!r}; the tasks are {', '.join(TASKS)}")
    source = _resolve(source)
    folder = (SAMPLE_DIR / "tasks" if source == "sample" else data_dir() / "tasks") / name
    return json.loads((folder / "info.json").read_text())


__all__ = ["TASKS", "SAMPLE_DIR", "data_dir", "full_data_available", "load_corpus", "load_task", "task_info"]
