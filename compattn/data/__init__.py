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
import hashlib
import json
import os
from pathlib import Path

from .build import DOCUMENT_HEADER, MANIFEST, MLM_DEV_DOCUMENTS, PARTIAL, TASKS

SAMPLE_DIR = Path(__file__).parent / "sample"


def data_dir() -> Path:
    """Where ``python -m compattn data`` builds (``$COMPATTN_DATA`` or ``~/.cache/compattn``)."""
    default = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "compattn"
    return Path(os.environ.get("COMPATTN_DATA", default))


REPAIR = "python -m compattn data"


class DataMismatch(ValueError):
    """A data file does not match the build's manifest (half-written, edited or from another build)."""


def full_data_available() -> bool:
    return (data_dir() / MANIFEST).exists()


def _interrupted() -> bool:
    """Files of a build without its manifest: a build was stopped while moving files into place."""
    root = data_dir()
    return not full_data_available() and any((root / name).exists() for name in ("corpus.txt", "tasks", PARTIAL))


_CHECKED: dict = {}


def read_manifest() -> dict:
    path = data_dir() / MANIFEST
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise ValueError(f"no full data under {data_dir()}; run `{REPAIR}` first") from None
    except json.JSONDecodeError as err:
        raise DataMismatch(f"{path} is damaged ({err}); run `{REPAIR}` to rebuild the data") from None


def check_file(path: Path) -> None:
    """Refuse a data file whose size or sha256 differs from its manifest, naming it and what
    repairs it: the full build's ``manifest.json``, or for a file of the embedded sample the
    sample's own (``sample/manifest.json``).  Hashing is remembered per (path, mtime, size)."""
    path = Path(path)
    sample = path.resolve().is_relative_to(SAMPLE_DIR.resolve())
    root = SAMPLE_DIR if sample else data_dir()
    repair = ("reinstall compattn (the embedded sample that ships with it is damaged)" if sample
              else f"run `{REPAIR}` to rebuild the data")
    try:
        stat = path.stat()
    except FileNotFoundError:
        raise DataMismatch(f"{path} is missing; {repair}") from None
    key = (stat.st_mtime_ns, stat.st_size)
    if _CHECKED.get(str(path)) == key:
        return
    manifest = read_sample_manifest() if sample else read_manifest()
    entry = manifest.get("files", {}).get(path.resolve().relative_to(root.resolve()).as_posix())
    if entry is None:
        raise DataMismatch(f"{path} is not listed in {root / MANIFEST} (made by an older version, or an "
                           f"interrupted build); {repair}")
    if stat.st_size != entry["bytes"]:
        raise DataMismatch(f"{path} has {stat.st_size:,} bytes but its manifest says {entry['bytes']:,} "
                           f"(cut short?); {repair}")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != entry["sha256"]:
        raise DataMismatch(f"{path} does not match its sha256 in {root / MANIFEST} (changed since it was "
                           f"made); {repair}")
    _CHECKED[str(path)] = key


def read_sample_manifest() -> dict:
    path = SAMPLE_DIR / MANIFEST
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError) as err:
        raise DataMismatch(f"the embedded sample's manifest {path} is missing or damaged ({err}); reinstall "
                           "compattn") from None


def data_id(source: str = "auto") -> str:
    """The id of the data a source resolves to: the full build's manifest id, or the embedded
    sample's (both hashes of their files' sizes and sha256)."""
    if _resolve(source) == "full":
        manifest = read_manifest()
        if "id" not in manifest:
            raise DataMismatch(f"{data_dir() / MANIFEST} has no id (made by an older version); run "
                               f"`{REPAIR}` to rebuild the data")
        return manifest["id"]
    return "sample-" + read_sample_manifest()["id"][:12]


def _resolve(source: str) -> str:
    if source not in ("auto", "sample", "full"):
        raise ValueError(f"source must be 'auto', 'sample' or 'full', got {source!r}")
    if source != "sample" and _interrupted():
        raise DataMismatch(f"{data_dir()} holds an unfinished data build (no {MANIFEST}); run `{REPAIR}` "
                           "to finish it")
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


def load_named_corpus(source: str = "auto") -> list[tuple[str, list[str]]]:
    """Pre-training text as named documents ``(name, paragraphs)`` (names such as
    ``austen/persuasion``; see ``build.corpus_documents``)."""
    path = corpus_path(source)
    check_file(path)
    return read_named_corpus(path)


def corpus_path(source: str = "auto") -> Path:
    return SAMPLE_DIR / "corpus.txt.gz" if _resolve(source) == "sample" else data_dir() / "corpus.txt"


def read_named_corpus(path: Path) -> list[tuple[str, list[str]]]:
    """Parse a corpus file (``build.write_corpus``'s format) into named documents."""
    documents, name, current = [], None, []
    for line in _read_text(Path(path)).split("\n"):
        if line.startswith(DOCUMENT_HEADER):
            name = line[len(DOCUMENT_HEADER):].strip()
        elif line.strip():
            if name is None:
                raise DataMismatch(f"{path} has text before its first document header ({DOCUMENT_HEADER!r}: "
                                   f"made by an older version); run `{REPAIR}` to rebuild the data")
            current.append(line.strip())
        elif current:
            documents.append((name, current))
            name, current = None, []
    if current:
        documents.append((name, current))
    if not documents:
        raise ValueError(f"{path} holds no text")
    return documents


def load_corpus(source: str = "auto") -> list[list[str]]:
    """Pre-training text as documents, each a list of paragraphs."""
    return [paragraphs for _, paragraphs in load_named_corpus(source)]


def mlm_split(source: str = "auto", named=None) -> dict[str, list[list[str]]]:
    """The pre-training documents split for masked-LM: ``{"train": [...], "dev": [...]}``, dev
    being the whole documents named in ``MLM_DEV_DOCUMENTS`` (no block of dev text is cut from
    a document that training sees).  ``named`` (``read_named_corpus``'s result) instead of
    loading ``source``."""
    named = load_named_corpus(source) if named is None else named
    missing = set(MLM_DEV_DOCUMENTS) - {name for name, _ in named}
    if missing:
        raise DataMismatch(f"the corpus has no document {sorted(missing)} for the masked-LM dev split; run "
                           f"`{REPAIR}` to rebuild the data")
    return {"train": [doc for name, doc in named if name not in MLM_DEV_DOCUMENTS],
            "dev": [doc for name, doc in named if name in MLM_DEV_DOCUMENTS]}


def load_task(name: str, split: str, source: str = "auto") -> list[dict]:
    """Rows ``{"text", ["text_b"], "label", ...}`` of one split of a downstream task."""
    if name not in TASKS:
        raise ValueError(f"unknown task {name!r}; the tasks are {', '.join(TASKS)}")
    if split not in ("train", "dev", "test"):
        raise ValueError(f"split must be 'train', 'dev' or 'test', got {split!r}")
    source = _resolve(source)
    folder = (SAMPLE_DIR / "tasks" if source == "sample" else data_dir() / "tasks") / name
    path = folder / (f"{split}.jsonl.gz" if source == "sample" else f"{split}.jsonl")
    check_file(path)
    return [json.loads(line) for line in _read_text(path).splitlines() if line.strip()]


def task_info(name: str, source: str = "auto") -> dict:
    if name not in TASKS:
        raise ValueError(f"unknown task {name!r}; the tasks are {', '.join(TASKS)}")
    source = _resolve(source)
    folder = (SAMPLE_DIR / "tasks" if source == "sample" else data_dir() / "tasks") / name
    check_file(folder / "info.json")
    return json.loads((folder / "info.json").read_text())


__all__ = ["TASKS", "SAMPLE_DIR", "DataMismatch", "data_dir", "full_data_available", "check_file", "data_id",
           "read_manifest", "load_corpus", "load_named_corpus", "read_named_corpus", "corpus_path", "mlm_split", "load_task", "task_info"]
