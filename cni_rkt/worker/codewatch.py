"""Whether the code a worker imported changed on disk since, without a walk per request.

A worker must not serve once its code changed under it (an upgrade in place, a development
checkout edited, a security update of the interpreter). It watches the package tree, the
import roots, the interpreter's binary and the top level of its standard library's
directories (not their subpackages: an update of Python in place replaces the binary too)
with inotify, set up before the plugins are imported: the kernel queues an event as a file
is written, so a request that comes after any change finds it pending, at the cost of one
non-blocking read. What inotify cannot see (a change made on another host of a network filesystem) is
caught by re-walking the tree (`code_stamp`) once a second, off the requests' path; when
inotify is unavailable, every check walks it.
"""

from __future__ import annotations

import ctypes
import os
import sys
import time

IN_MODIFY, IN_ATTRIB, IN_MOVED_FROM, IN_MOVED_TO = 0x2, 0x4, 0x40, 0x80
IN_CREATE, IN_DELETE, IN_DELETE_SELF, IN_MOVE_SELF = 0x100, 0x200, 0x400, 0x800
IN_Q_OVERFLOW, IN_IGNORED, IN_ISDIR = 0x4000, 0x8000, 0x40000000
_ENTRIES = IN_MOVED_FROM | IN_MOVED_TO | IN_CREATE | IN_DELETE  # what changes a directory's mtime
_GONE = IN_DELETE_SELF | IN_MOVE_SELF | IN_IGNORED | IN_Q_OVERFLOW  # the watch (or events) lost
WATCHED = _ENTRIES | IN_MODIFY | IN_ATTRIB | IN_DELETE_SELF | IN_MOVE_SELF
RESTAMP_SECONDS = 1.0
_HEADER = 16  # struct inotify_event: int wd; uint32 mask, cookie, len; then the name

_libc = ctypes.CDLL(None, use_errno=True)


def code_stamp(package_dir: str, roots: list[str], files: list[str] = ()) -> set[tuple]:
    """Changes when a .py file under the package, an import root's entries or one of `files` change."""
    stamp = set()
    for directory in package_dirs(package_dir):
        with os.scandir(directory) as entries:
            for entry in entries:
                if entry.name.endswith(".py") and not entry.is_dir(follow_symlinks=False):
                    info = entry.stat()
                    stamp.add((entry.path, info.st_mtime_ns, info.st_size))
    for root in roots:
        try:
            stamp.add((root, os.stat(root).st_mtime_ns))
        except OSError:
            stamp.add((root, None))
    for path in files:
        try:
            info = os.stat(path)
            stamp.add((path, info.st_dev, info.st_ino, info.st_mtime_ns, info.st_size))
        except OSError:
            stamp.add((path, None))
    return stamp


def interpreter_paths(roots: list[str]) -> tuple[list[str], list[str]]:
    """(the directories the interpreter imports its standard library from, the files of the
    interpreter: its binary, its shared libpython if it has one, a zipped standard library).

    Called in the worker, which runs with -IS: sys.path holds the interpreter's own entries
    and `roots`. An upgrade replaces the binary and renames new modules into those
    directories, as it does in an import root.
    """
    own = [p for p in sys.path if p not in roots]
    files = [os.path.realpath(sys.executable), *_mapped_libpython(), *filter(os.path.isfile, own)]
    return [p for p in own if os.path.isdir(p)], list(dict.fromkeys(files))


def _mapped_libpython() -> list[str]:
    try:
        with open("/proc/self/maps") as maps:
            paths = {line.split(maxsplit=5)[-1].strip() for line in maps if "/libpython" in line}
    except OSError:
        return []
    return sorted(p for p in paths if os.path.isfile(p))


def package_dirs(package_dir: str) -> list[str]:
    """The package directory and every directory below it but __pycache__."""
    found, pending = [], [package_dir]
    while pending:
        directory = pending.pop()
        found.append(directory)
        with os.scandir(directory) as entries:
            pending += [e.path for e in entries if e.is_dir(follow_symlinks=False) and e.name != "__pycache__"]
    return found


def is_code_change(mask: int, name: bytes, in_root: bool, is_file: bool = False) -> bool:
    """Whether one inotify event can change what the worker would import (or run it)."""
    if mask & _GONE or is_file:  # a watched file: written, replaced (its link count), removed
        return True
    if not name:  # the watched directory itself: only going away matters (above)
        return in_root and bool(mask & IN_ATTRIB)  # a root's mtime was part of the stamp
    if in_root:
        return bool(mask & _ENTRIES)  # an entry added, removed or renamed, as its mtime tells
    if mask & IN_ISDIR:
        return name != b"__pycache__" and bool(mask & _ENTRIES)  # a subpackage came or went
    return name.endswith(b".py")


class CodeWatch:
    """Set up before importing the code it guards; `changed()` then says if it changed since."""

    def __init__(self, package_dir: str, roots: list[str], files: list[str] = ()) -> None:
        """`roots` are directories whose entries count, `files` files of which any change counts."""
        self.package_dir, self.roots, self.files = package_dir, roots, list(files)
        self.stamp = code_stamp(package_dir, roots, self.files)
        self.stamped_at = time.monotonic()
        self.seen_change = False
        self.fd, self.root_watches, self.file_watches = self._watch()

    def _watch(self) -> tuple[int | None, set[int], set[int]]:
        fd = _libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC)
        if fd < 0:
            return None, set(), set()
        watches: dict[str, set[int]] = {"package": set(), "root": set(), "file": set()}
        try:
            for path, kind in [*((d, "package") for d in package_dirs(self.package_dir)),
                               *((r, "root") for r in self.roots), *((f, "file") for f in self.files)]:
                wd = _libc.inotify_add_watch(fd, os.fsencode(path), WATCHED)
                if wd < 0:
                    raise OSError(ctypes.get_errno(), f"inotify_add_watch {path}")
                watches[kind].add(wd)
        except OSError:  # e.g. the watch limit: walk the tree on every check instead
            os.close(fd)
            return None, set(), set()
        return fd, watches["root"], watches["file"]

    def fileno(self) -> int | None:
        return self.fd

    def changed(self) -> bool:
        """Whether the code on disk changed since set-up (once true, it stays true).

        Cheap with inotify (pending events only); without it, a walk of the tree.
        """
        if not self.seen_change:
            self.seen_change = self._pending_change() if self.fd is not None else self._walk_differs()
        return self.seen_change

    def rewalk_if_due(self) -> None:
        """With inotify, walk the tree anyway once in RESTAMP_SECONDS, for what inotify
        cannot see; the worker calls this off a request's path."""
        if self.fd is not None and not self.seen_change and time.monotonic() - self.stamped_at >= RESTAMP_SECONDS:
            self.seen_change = self._walk_differs()

    def _walk_differs(self) -> bool:
        self.stamped_at = time.monotonic()
        return code_stamp(self.package_dir, self.roots, self.files) != self.stamp

    def _pending_change(self) -> bool:
        change = False
        while True:
            try:
                data = os.read(self.fd, 65536)
            except BlockingIOError:
                return change
            offset = 0
            while offset + _HEADER <= len(data):
                wd, mask, _cookie, size = (int.from_bytes(data[offset + i : offset + i + 4], sys.byteorder)
                                           for i in (0, 4, 8, 12))
                name = data[offset + _HEADER : offset + _HEADER + size].rstrip(b"\0")
                change = change or is_code_change(mask, name, wd in self.root_watches, wd in self.file_watches)
                offset += _HEADER + size

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None
