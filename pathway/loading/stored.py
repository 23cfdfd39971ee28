"""Loaded pathways kept on disk between processes, like Python's own bytecode cache.

A load reads, checks and resolves every rule file (YAML, validation, cross-references) and then
compiles the engine's rulesets: most of a command's start. The result is a pure function of the files
the load read, the profile, the parameter overrides and this package's code, so it is kept in one file
per pathway folder, profile and overrides, and reused while all of these are unchanged:

* every file the load read is checked again on each use: it must still resolve inside the pathway
  folder, be a regular file and hold the same bytes (SHA-256); the list of profiles must be the same;
* the entry's name covers the folder as given, the working folder (diagnostics name files relative to
  it), the profile, the overrides, this package's version and the size and modification time of each of
  its modules (as Python's bytecode cache checks sources), Python's version and pydantic's (the
  definition holds pydantic models);
* only a load that succeeded is kept: a file with problems is read and reported afresh every time;
* a threshold mutant (``pathway test --mutate``) is never kept.

The entries are pickles, so an entry is read only from a folder and a file that belong to the user
running the process and that no one else can write (the folder is made with mode 0700 and each file
0600, written whole and renamed into place). Anything unexpected (a missing, unreadable, truncated or
foreign entry) counts as no entry: the pathway is loaded from its files, and the entry written again
when the folder allows it. The cache never changes what a load gives, only how long it takes.

Where: ``$PATHWAY_CACHE_DIR``, else ``$XDG_CACHE_HOME/asuc-pathway``, else ``~/.cache/asuc-pathway``.
``PATHWAY_NO_CACHE=1`` turns it off (the test suite runs with it off, except the tests of this module).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import pickle
import stat
import sys
import tempfile
import threading
import time
import weakref
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pathway.definition.pathway import PathwayDef

__all__ = ["cache_folder", "stored_definition", "keep_definition", "stored_compiled", "keep_compiled", "registered_before",
           "MAX_ENTRIES", "FORMAT"]

#: the layout of an entry; raised whenever what an entry holds changes shape
FORMAT = 2
#: entries kept in the folder; the least recently written beyond this are removed when one is written
MAX_ENTRIES = 64
_SUFFIX = ".pathway-cache"

_lock = threading.Lock()
_code: str | None = None
#: id(definition) -> (a weak reference to it, the entry's path, its manifest, the compiled form or None, whether
#: durable_rules took that compiled form's rulesets)
_known: dict[int, tuple[weakref.ref[Any], Path, dict[str, Any], Any, bool]] = {}


def cache_folder() -> Path | None:
    """Where entries are kept, or None when the cache is off (``PATHWAY_NO_CACHE`` set to anything but ``0``
    or empty)."""
    if os.environ.get("PATHWAY_NO_CACHE", "") not in ("", "0"):
        return None
    named = os.environ.get("PATHWAY_CACHE_DIR", "")
    if named:
        return Path(named)
    base = os.environ.get("XDG_CACHE_HOME", "")
    try:
        return (Path(base) if base else Path.home() / ".cache") / "asuc-pathway"
    except RuntimeError:  # no home folder
        return None


def _code_stamp() -> str:
    """This package's version and each module's name, size and modification time; Python's and pydantic's
    versions; the path, size and modification time of durable_rules' C core (an entry records that the core
    took its rulesets) (worked out once per process)."""
    global _code
    if _code is None:
        import importlib.util

        import pydantic.version

        from pathway.core.version import __version__

        package = Path(__file__).resolve().parent.parent
        h = hashlib.sha256(f"{FORMAT}\0{__version__}\0{sys.version}\0{pydantic.version.VERSION}\0".encode())
        core = importlib.util.find_spec("durable_rules_engine")
        origin = core.origin if core is not None else None
        if origin:
            info = os.stat(origin)
            h.update(f"{origin}\0{info.st_size}\0{info.st_mtime_ns}\0".encode("utf-8", "surrogateescape"))
        for folder, dirs, files in sorted(os.walk(package)):
            dirs[:] = sorted(d for d in dirs if d != "__pycache__")
            for name in sorted(files):
                if name.endswith(".py"):
                    info = os.stat(os.path.join(folder, name))
                    h.update(f"{os.path.relpath(os.path.join(folder, name), package)}\0{info.st_size}\0"
                             f"{info.st_mtime_ns}\0".encode("utf-8", "surrogateescape"))
        _code = h.hexdigest()
    return _code


def _entry_path(folder: Path, root: Path, profile: str | None, overrides: dict[str, Any] | None) -> Path:
    key = json.dumps([_code_stamp(), os.fspath(root), os.getcwd(), profile, overrides or {}], sort_keys=True,
                     default=repr)
    return folder / (hashlib.sha256(key.encode("utf-8", "surrogateescape")).hexdigest()[:32] + _SUFFIX)


def _profiles(root: Path) -> list[str]:
    folder = root / "profiles"
    try:
        return sorted(p.name for p in folder.glob("*.yaml")) if folder.is_dir() else []
    except OSError:
        return []


def _manifest(root: Path, files: list[str], read_as: dict[str, tuple[int, int, int]] | None = None,
              ) -> dict[str, Any] | None:
    """What an entry is valid for: each file the load read with the SHA-256 of its bytes, and the
    profiles folder's list (None when a file cannot be read, or, given ``read_as``, is no longer the file
    the load read: another inode, modification time or size)."""
    try:
        real_root = root.resolve()
        hashes = []
        for name in files:
            real = Path(name).resolve()
            if not real.is_relative_to(real_root):
                return None
            with open(real, "rb") as f:
                info = os.fstat(f.fileno())
                if not stat.S_ISREG(info.st_mode):
                    return None
                if read_as is not None and read_as.get(name) != (info.st_ino, info.st_mtime_ns, info.st_size):
                    return None  # changed since the load read it: the load is not kept
                hashes.append([name, hashlib.sha256(f.read()).hexdigest()])
    except (OSError, RuntimeError, ValueError):
        return None
    return {"format": FORMAT, "files": hashes, "profiles": _profiles(root)}


def _private(info: os.stat_result) -> bool:
    """Owned by this user and writable by no one else."""
    getuid = getattr(os, "getuid", None)
    return (getuid is None or info.st_uid == getuid()) and not info.st_mode & (stat.S_IWGRP | stat.S_IWOTH)


def stored_definition(root: Path, profile: str | None, overrides: dict[str, Any] | None) -> PathwayDef | None:
    """The definition kept for this load, when every file it read is unchanged; else None."""
    folder = cache_folder()
    if folder is None:
        return None
    try:
        path = _entry_path(folder, root, profile, overrides)
        if not _private(os.stat(folder)):
            return None
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except (OSError, RuntimeError, ValueError):
        return None
    try:
        with os.fdopen(fd, "rb") as f:
            info = os.fstat(f.fileno())
            if not stat.S_ISREG(info.st_mode) or not _private(info):
                return None
            manifest = pickle.load(f)
            if (not isinstance(manifest, dict) or manifest.get("format") != FORMAT
                    or _manifest(root, [name for name, _ in manifest.get("files", [])]) != manifest):
                return None
            definition, compiled, registered = pickle.load(f)
    except Exception:  # noqa: BLE001 - a truncated, foreign or stale entry is no entry: the files are loaded
        return None
    _remember(definition, path, manifest, compiled, registered is True and compiled is not None)
    return definition  # type: ignore[no-any-return]


def _remember(definition: Any, path: Path, manifest: dict[str, Any], compiled: Any, registered: bool) -> None:
    key = id(definition)

    def forget(_ref: Any, key: int = key, known: dict[int, Any] = _known) -> None:
        known.pop(key, None)  # atomic; also at interpreter exit, when this module's names may be gone

    with _lock:
        _known[key] = (weakref.ref(definition, forget), path, manifest, compiled, registered)


def _entry_of(definition: Any) -> tuple[Path, dict[str, Any], Any, bool] | None:
    with _lock:
        known = _known.get(id(definition))
    if known is None or known[0]() is not definition:
        return None
    return known[1], known[2], known[3], known[4]


def keep_definition(root: Path, profile: str | None, overrides: dict[str, Any] | None,
                    definition: PathwayDef, read_as: dict[str, tuple[int, int, int]]) -> None:
    """Keep a definition just loaded from its files (its compiled form is added by :func:`keep_compiled`);
    ``read_as``: the inode, modification time and size of each file when the load read it (a file changed
    since then means the definition may not be what the files now say: it is not kept)."""
    folder = cache_folder()
    if folder is None:
        return
    manifest = _manifest(root, list(definition.files), read_as)
    if manifest is None:
        return
    try:
        path = _entry_path(folder, root, profile, overrides)
    except (OSError, ValueError):
        return
    if _write(folder, path, manifest, definition, None, False):
        _remember(definition, path, manifest, None, False)


def stored_compiled(definition: Any) -> Any:
    """The compiled form kept with a definition that came from (or went into) the cache, or None."""
    entry = _entry_of(definition)
    return None if entry is None else entry[2]


def registered_before(definition: Any) -> bool:
    """durable_rules' C core took every ruleset of the compiled form kept with this definition (:func:`keep_compiled`
    with ``registered``), in a process of this code and this core: registering them again cannot be refused."""
    entry = _entry_of(definition)
    return entry is not None and entry[3]


def keep_compiled(definition: Any, compiled: Any, registered: bool = False) -> None:
    """Keep the compiled form of a definition that came from (or went into) the cache, beside it; ``registered``:
    durable_rules' core has just taken all its rulesets (an entry kept without it is written again to say so)."""
    entry = _entry_of(definition)
    if entry is None or (entry[2] is not None and (entry[3] or not registered)):
        return
    path, manifest, _, _ = entry
    if _write(path.parent, path, manifest, definition, compiled, registered):
        _remember(definition, path, manifest, compiled, registered)


def _write(folder: Path, path: Path, manifest: dict[str, Any], definition: Any, compiled: Any,
           registered: bool) -> bool:
    try:
        payload = pickle.dumps((definition, compiled, registered), protocol=pickle.HIGHEST_PROTOCOL)
    except Exception:  # noqa: BLE001 - something in it does not pickle: it is simply not kept
        return False
    try:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        if not _private(os.stat(folder)):
            return False
        fd, temp = tempfile.mkstemp(dir=folder, prefix=".writing-", suffix=_SUFFIX)  # mode 0600
        try:
            with os.fdopen(fd, "wb") as f:
                pickle.dump(manifest, f, protocol=pickle.HIGHEST_PROTOCOL)
                f.write(payload)
            os.replace(temp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temp)
            raise
        _prune(folder)
    except OSError:
        return False
    return True


def _prune(folder: Path) -> None:
    """Remove the entries written longest ago beyond MAX_ENTRIES, and files left half written over an hour ago
    (by a process that was stopped while it wrote)."""
    entries: list[tuple[int, Path]] = []
    left: list[tuple[int, Path]] = []
    try:
        for p in folder.iterdir():
            if p.name.endswith(_SUFFIX):
                (left if p.name.startswith(".") else entries).append((p.stat().st_mtime_ns, p))
    except OSError:
        return
    old = time.time_ns() - 3600 * 10**9
    stale = [p for written, p in left if written < old]
    stale += [p for _, p in sorted(entries)[: max(0, len(entries) - MAX_ENTRIES)]]
    for p in stale:
        with contextlib.suppress(OSError):
            p.unlink()
