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

from .build import MANIFEST, PARTIAL, TASKS

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
    """Refuse a file of the full build whose size or sha256 differs from the manifest, naming it
    and the command that repairs it.  Hashing is remembered per (path, mtime, size)."""
    path = Path(path)
    try:
        stat = path.stat()
    except FileNotFoundError:
        raise DataMismatch(f"{path} is missing from the data build; run `{REPAIR}` to rebuild it") from None
    key = (stat.st_mtime_ns, stat.st_size)
    if _CHECKED.get(str(path)) == key:
        return
    root = data_dir()
    name = path.relative_to(root).as_posix()
    entry = read_manifest().get("files", {}).get(name)
    if entry is None:
        raise DataMismatch(f"{path} is not listed in {root / MANIFEST} (a build by an older version, or an "
                           f"interrupted one); run `{REPAIR}` to rebuild the data")
    if stat.st_size != entry["bytes"]:
        raise DataMismatch(f"{path} has {stat.st_size:,} bytes but the manifest says {entry['bytes']:,} (an "
                           f"interrupted build?); run `{REPAIR}` to rebuild the data")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != entry["sha256"]:
        raise DataMismatch(f"{path} does not match its sha256 in the manifest (changed since the build); "
                           f"run `{REPAIR}` to rebuild the data")
    _CHECKED[str(path)] = key


_SAMPLE_ID: list = []


def data_id(source: str = "auto") -> str:
    """The id of the data a source resolves to: the full build's manifest id, or a hash of the
    embedded sample's files."""
    if _resolve(source) == "full":
        manifest = read_manifest()
        if "id" not in manifest:
            raise DataMismatch(f"{data_dir() / MANIFEST} has no id (made by an older version); run "
                               f"`{REPAIR}` to rebuild the data")
        return manifest["id"]
    if not _SAMPLE_ID:
        digest = hashlib.sha256()
        for path in sorted(SAMPLE_DIR.rglob("*")):
            if path.is_file() and path.suffix in (".gz", ".json"):
                digest.update(path.relative_to(SAMPLE_DIR).as_posix().encode() + b"\0" + path.read_bytes())
        _SAMPLE_ID.append("sample-" + digest.hexdigest()[:12])
    return _SAMPLE_ID[0]


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


def load_corpus(source: str = "auto") -> list[list[str]]:
    """Pre-training text as documents, each a list of paragraphs."""
    source = _resolve(source)
    path = SAMPLE_DIR / "corpus.txt.gz" if source == "sample" else data_dir() / "corpus.txt"
    if source == "full":
        check_file(path)
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
    if source == "full":
        check_file(path)
    return [json.loads(line) for line in _read_text(path).splitlines() if line.strip()]


def task_info(name: str, source: str = "auto") -> dict:
    if name not in TASKS:
        raise ValueError(f"unknown task {name!r}; the tasks are {', '.join(TASKS)}")
    source = _resolve(source)
    folder = (SAMPLE_DIR / "tasks" if source == "sample" else data_dir() / "tasks") / name
    if source == "full":
        check_file(folder / "info.json")
    return json.loads((folder / "info.json").read_text())


__all__ = ["TASKS", "SAMPLE_DIR", "DataMismatch", "data_dir", "full_data_available", "check_file", "data_id",
           "read_manifest", "load_corpus", "load_task", "task_info"]
