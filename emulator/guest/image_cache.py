"""What bwemu learns from an image file, kept per file content.

Parsing an ELF with pyelftools is slow next to a boot: the wrapper's
symbol table took longer than its guest run, its DWARF line table three
times as long, and importing pyelftools at all is a fifth of a CLI boot
(docs/performance.md).  The answers depend on the file's bytes alone, so
each is kept:

- in this process, per (path, size, modification time): every boot of a
  campaign, a benchmark or a pytest session parses an image once;
- on disk, per the SHA-256 of the file's bytes (disk_cache_dir()), so a
  repeated CLI run of an unchanged image parses nothing and does not
  import pyelftools; a rebuilt image has another hash and is parsed anew.

fact(path, kind, compute) is the one entry point: compute(path) parses
and returns a picklable value; what it raises is not cached.  Bump
VERSION when a cached kind changes what it holds.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")

#: Part of every disk cache file's name: a reader of another version
#: never sees a value it does not know.
VERSION = 3
#: Files whose facts are kept in this process at once (a fuzz campaign
#: composes many images; each costs a few hundred KiB).
PROCESS_LIMIT = 64

_facts: dict[tuple[str, int, int], dict[str, Any]] = {}
_digests: dict[tuple[str, int, int], str] = {}

#: How many times a kind was really computed in this process (tests and
#: benchmarks: a warm cache computes nothing).
computed: dict[str, int] = {}


def disk_cache_dir() -> Path | None:
    """Where parsed facts are kept between processes: $BWEMU_CACHE_DIR,
    else $XDG_CACHE_HOME/bwemu, else ~/.cache/bwemu.  BWEMU_CACHE_DIR set
    to the empty string turns the disk cache off."""
    env = os.environ.get("BWEMU_CACHE_DIR")
    if env is not None:
        return Path(env) if env else None
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "bwemu"


def file_key(path: Path) -> tuple[str, int, int]:
    """(resolved path, size, mtime_ns); raises OSError for a missing file,
    or for one that is not regular (/dev/zero, a FIFO: no content to key
    by, and hashing it would never end)."""
    st = os.stat(path)
    if not stat.S_ISREG(st.st_mode):
        raise OSError(f"{path}: not a regular file")
    return str(Path(path).resolve()), st.st_size, st.st_mtime_ns


def digest(path: Path) -> str:
    """The SHA-256 of the file's bytes (40 hex digits), once per key."""
    key = file_key(path)
    hit = _digests.get(key)
    if hit is None:
        h = hashlib.sha256()
        with open(path, "rb") as f:        # in pieces: a vmlinux may be large
            for piece in iter(lambda: f.read(1 << 20), b""):
                h.update(piece)
        hit = _digests[key] = h.hexdigest()[:40]
    return hit


def fact(path: Path, kind: str, compute: Callable[[Path], T]) -> T:
    """compute(path), or what it gave for a file of the same content."""
    try:
        key = file_key(path)
    except OSError:
        return compute(path)           # let compute say what is wrong
    kinds = _facts.get(key)
    if kinds is None:
        if len(_facts) >= PROCESS_LIMIT:
            _facts.clear()
            _digests.clear()
        kinds = _facts[key] = {}
    if kind in kinds:
        return kinds[kind]
    folder = disk_cache_dir()
    file = None
    if folder is not None:
        try:
            file = folder / f"image-v{VERSION}-{digest(path)}-{kind}.pickle"
        except OSError:
            return compute(path)
        stored = read_pickle(file)     # a 1-tuple: the value may be None
        if isinstance(stored, tuple) and len(stored) == 1:
            kinds[kind] = stored[0]
            return stored[0]
    value = compute(path)
    computed[kind] = computed.get(kind, 0) + 1
    kinds[kind] = value
    if file is not None:
        write_pickle(file, (value,))
    return value


def clear() -> None:
    """Forget everything kept in this process (the disk cache is keyed by
    content and needs no clearing)."""
    _facts.clear()
    _digests.clear()


def read_pickle(file: Path) -> Any:
    """What write_pickle put in file; None when it is absent or unreadable
    (then the caller computes the value again)."""
    try:
        with file.open("rb") as f:
            return pickle.load(f)
    except (OSError, pickle.PickleError, EOFError, AttributeError, ImportError,
            IndexError, TypeError, ValueError):
        return None


def write_pickle(file: Path, value: Any) -> None:
    """value into file, atomically; nothing when the folder is not writable
    (a read-only home: the cache is an optimisation only)."""
    try:
        file.parent.mkdir(parents=True, exist_ok=True)
        tmp = file.with_name(f".{file.name}.{os.getpid()}")
        with tmp.open("wb") as f:
            pickle.dump(value, f, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(tmp, file)     # readers never see half a file
    except OSError:
        pass


__all__ = ["VERSION", "clear", "computed", "digest", "disk_cache_dir", "fact", "file_key",
           "read_pickle", "write_pickle"]
