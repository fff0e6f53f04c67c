"""What every writer of an output folder shares: content hashes, atomic writes, the folder lock
and the cleaning of leftovers.  Training runs, sweeps and the evidence runner use these and
nothing else, so that one rule holds everywhere:

* a checkpoint or record carries the sha256 of its own content (``content_sha256``), checked
  whenever it is read: bytes changed after the write are refused, naming the file;
* a file is written to ``<name>.tmp<pid>`` and renamed into place, so a reader sees the old
  file or the new one; a full disk is a one-line error naming the space needed, and no temporary
  file outlives its writer (a killed writer's are removed by the next one to lock the folder);
* one process at a time writes into an output folder: it holds ``.compattn-lock`` (an ``flock``
  the kernel releases when the process dies, and a note of who holds it).  A second writer is
  refused, naming the holder; the lock of a killed process is taken over, saying so.
"""
from __future__ import annotations

import errno
import hashlib
import json
import os
import re
import secrets
import shutil
import socket
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

try:
    import fcntl
except ImportError:                 # not on Windows: there the folder is not locked
    fcntl = None

HASH_KEY = "content_sha256"
LOCK_NAME = ".compattn-lock"


# --- content hashes -------------------------------------------------------------------------------
class ContentChanged(ValueError):
    """A file's content does not match the hash written with it."""


def content_hash(value) -> str:
    """sha256 of a nested structure of dicts, lists, tensors, numbers, strings and None, as it is
    after a round trip through ``torch.save``/``torch.load`` (tuples and lists hash alike; a
    tensor by its dtype, shape and bytes)."""
    digest = hashlib.sha256()
    _feed(digest, value)
    return digest.hexdigest()


def _feed(digest, value):
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(value, torch.Tensor):
        tensor = value.detach().cpu().contiguous()
        digest.update(f"T{tensor.dtype}{tuple(tensor.shape)};".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    elif isinstance(value, dict):
        digest.update(b"D%d;" % len(value))
        for key in sorted(value, key=repr):
            _feed(digest, key)
            _feed(digest, value[key])
    elif isinstance(value, (list, tuple)):
        digest.update(b"L%d;" % len(value))
        for item in value:
            _feed(digest, item)
    elif value is None or isinstance(value, (bool, int, float, str)):
        digest.update(f"{type(value).__name__}:{value!r};".encode())
    else:
        raise TypeError(f"cannot hash a {type(value).__name__} (a checkpoint holds tensors, numbers, "
                        "strings, lists and dicts)")


def json_hash(record: dict) -> str:
    """sha256 of a JSON record's canonical text, its own hash left out."""
    body = {k: v for k, v in record.items() if k != HASH_KEY}
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def check_hash(found: str | None, expected: str, path, what: str, fix: str):
    """Refuse ``path`` when the hash it carries (``found``) is not that of its content."""
    if found != expected:
        raise ContentChanged(f"{what} {path} was changed after it was written (its content does not match "
                             f"the sha256 written with it); {fix}")


# --- atomic writes --------------------------------------------------------------------------------
class DiskFull(OSError):
    """No space left for a file; the message names the space needed and the space free."""


def temp_path(path: Path) -> Path:
    return path.with_name(f"{path.name}.tmp{os.getpid()}")


def _megabytes(n: int) -> str:
    return f"{n / 2**20:.1f} MiB"


def write_atomic(path, data: bytes | str) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder, synced, then renamed
    over ``path``.  Whatever happens (a full disk, an exception, a signal that raises), the
    temporary file is removed."""
    path = Path(path)
    data = data.encode() if isinstance(data, str) else data
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_path(path)
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as err:
        tmp.unlink(missing_ok=True)
        if isinstance(err, OSError) and err.errno in (errno.ENOSPC, errno.EDQUOT):
            free = shutil.disk_usage(path.parent).free
            full = DiskFull(f"no space left on the device of {path.parent} to write {path.name}: it needs "
                            f"{_megabytes(len(data))} and {_megabytes(free)} are free; free some space and run "
                            "the same command again")
            full.errno = err.errno
            raise full from None
        raise
    _sync_folder(path.parent)


def _sync_folder(folder: Path):
    """Make the rename itself durable (a crash right after it keeps the new file)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


# --- leftovers ------------------------------------------------------------------------------------
_TEMP = re.compile(r"\.tmp(\d+)$")


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` runs on this machine (a zombie, killed but not yet reaped, does not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state not in ("Z", "X")


def clean_leftovers(folder) -> list[str]:
    """Remove the temporary files (``*.tmp<pid>``) that writers which are no longer running left
    in ``folder``; returns their names."""
    removed = []
    folder = Path(folder)
    if not folder.is_dir():
        return removed
    for path in folder.iterdir():
        found = _TEMP.search(path.name)
        if found and int(found[1]) != os.getpid() and not pid_alive(int(found[1])):
            shutil.rmtree(path, ignore_errors=True) if path.is_dir() else path.unlink(missing_ok=True)
            removed.append(path.name)
    return removed


# --- the folder lock ------------------------------------------------------------------------------
class FolderBusy(ValueError):
    """Another process writes into the folder."""


@dataclass
class _Held:
    fd: int | None          # None: joined, the lock belongs to the process that started this one
    token: str
    pid: int
    count: int = 1


_HELD: dict[str, _Held] = {}


def _key(folder) -> str:
    return str(Path(folder).resolve())


def _describe(holder: dict) -> str:
    if not holder:
        return "a process that is just starting"
    return (f"pid {holder.get('pid')} on {holder.get('host')}, `{holder.get('command')}`, "
            f"since {holder.get('since')}")


def _read_holder(fd: int) -> dict:
    try:
        text = os.pread(fd, 65536, 0).decode()
        return json.loads(text) if text.strip() else {}
    except (OSError, ValueError):
        return {}


def holder(folder) -> dict:
    """Who holds ``folder``'s lock (``{}`` if nobody says so)."""
    path = Path(folder) / LOCK_NAME
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def _acquire(folder: Path, what: str) -> _Held:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / LOCK_NAME
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            busy = _read_holder(fd)
            os.close(fd)
            raise FolderBusy(f"{folder} is being written by another process ({_describe(busy)}); wait for it "
                             "to end or stop it, or use another output folder") from None
        try:                # its holder may have removed the file between our open and our flock
            same = os.fstat(fd).st_ino == os.stat(path).st_ino
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)
    previous = _read_holder(fd)
    token = secrets.token_hex(8)
    note = {"pid": os.getpid(), "host": socket.gethostname(), "command": " ".join(sys.argv)[:300],
            "since": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "what": what, "token": token}
    os.ftruncate(fd, 0)
    os.pwrite(fd, json.dumps(note).encode(), 0)
    stale = bool(previous)      # its holder died holding it (killed): the kernel freed the flock
    if stale:
        print(f"note: {folder} was locked by {_describe(previous)}, which is no longer running; lock "
              "taken over", file=sys.stderr, flush=True)
    removed = clean_leftovers(folder)
    if removed:
        print(f"note: removed {len(removed)} temporary files left in {folder} by stopped writers "
              f"({', '.join(sorted(removed)[:3])}{', ...' if len(removed) > 3 else ''})", file=sys.stderr, flush=True)
    return _Held(fd, token, os.getpid())


def _release(folder: Path, held: _Held):
    if held.fd is None:
        return
    try:
        (folder / LOCK_NAME).unlink(missing_ok=True)    # removed while still held: see _acquire
    finally:
        os.close(held.fd)


@contextmanager
def folder_lock(folder, what: str = ""):
    """Hold ``folder``'s lock for the block (re-entrant within a process: a sweep holds it while
    each training takes it again).  Raises :class:`FolderBusy` naming the holder."""
    folder = Path(folder)
    key = _key(folder)
    held = _HELD.get(key)
    if held is not None and held.pid != os.getpid():      # inherited through fork: not ours
        held = None
    if held is None and fcntl is not None:
        held = _HELD[key] = _acquire(folder, what)
    elif held is not None:
        held.count += 1
    try:
        yield
    finally:
        if held is not None:
            held.count -= 1
            if held.count == 0:
                _HELD.pop(key, None)
                _release(folder, held)


def lock_token(folder) -> str | None:
    """The token of the lock this process holds on ``folder`` (for the workers it starts)."""
    held = _HELD.get(_key(folder))
    return held.token if held is not None and held.pid == os.getpid() else None


@contextmanager
def joined(folder, token: str | None):
    """In a worker started by the holder of ``folder``'s lock: write into ``folder`` under that
    lock (the token proves the holder started it)."""
    folder = Path(folder)
    if token is None or fcntl is None:
        yield
        return
    if holder(folder).get("token") != token:
        raise FolderBusy(f"{folder} is no longer locked by the process that started this worker")
    key = _key(folder)
    _HELD[key] = _Held(None, token, os.getpid())
    try:
        yield
    finally:
        _HELD.pop(key, None)


__all__ = ["HASH_KEY", "LOCK_NAME", "ContentChanged", "DiskFull", "FolderBusy", "content_hash", "json_hash",
           "check_hash", "write_atomic", "temp_path", "clean_leftovers", "pid_alive", "folder_lock",
           "lock_token", "joined", "holder"]
