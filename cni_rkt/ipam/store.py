"""Where reservations live: the `Store` protocol and `DiskStore`, the Go plugin's files.

`<dataDir>/<network>/` holds, byte for byte as the reference's disk backend writes it:
- one file per address, named by its canonical form, holding `containerID\\r\\nifname`
  (mode 0600); files of pre-2018 versions hold only the container id and still count;
- `last_reserved_ip.<range set index>`: the last address reserved in that range set;
- `lock`: an empty file, flock(LOCK_EX) while the store is open.

Improvements over the reference, all invisible to it:
- one lock for a whole multi-range ADD (the reference locks per range set);
- an address file is written to a scratch name, then hard-linked to its real name: the
  link fails if the address is taken (claiming stays exclusive) and a reader never sees a
  torn file; a scratch file left by a killed process is removed under lock;
- lookups go through a rebuildable index (ipam/index.py) instead of reading every file.

No fsync, as in the reference: a file is visible to every reader once written, and only a
crash could lose it, which ends every pod that held an address along with it.
`last_reserved_ip.N` is rewritten in place (no scratch and rename: on ext4 replacing a file
flushes it, 0.3 ms a call); it is only where the next search starts, and the reference
itself empties it before writing. Anything but a regular file there (a symlink, a FIFO) is
neither read nor written through, but replaced.
"""

from __future__ import annotations

import errno
import fcntl
import functools
import os
import sqlite3
import stat
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import Protocol

from cni_rkt.errors import CNIError, ErrorCode
from cni_rkt.ipam import index as index_module
from cni_rkt.ipam.files import (
    LAST_RESERVED_PREFIX,
    LOCK_FILE,
    SCRATCH_PREFIX,
    address_of_name,
    file_content,
    network_dir,
    parse_content,
    read_nofollow,
)
from cni_rkt.ipam.index import Index, Reservation
from cni_rkt.ipam.ranges import Address, address_from_int, parse_ip

_IP_FILE_MODE = 0o600
_LAST_RESERVED_MODE = 0o644  # as the reference writes it
_CLOCK_REALTIME_COARSE = getattr(time, "CLOCK_REALTIME_COARSE", 5)  # the clock file times come from
_SETTLE_LIMIT_S = 0.05
_NO_HARD_LINKS = (errno.EPERM, errno.EOPNOTSUPP, errno.EMLINK)


class Store(Protocol):
    """What the allocator needs; DiskStore and the tests' in-memory store implement it."""

    def reserve(self, ip: Address, container_id: str, ifname: str, range_index: int) -> bool: ...

    def release(self, ip: Address) -> None: ...

    def held_by(self, container_id: str, ifname: str) -> list[Address]: ...

    def last_reserved(self, range_index: int) -> Address | None: ...

    def taken_between(self, family: int, first: int, last: int, limit: int) -> list[int]: ...


@functools.cache
def _boot_id() -> str:
    """Read once per process: a process never outlives its boot."""
    try:
        with open("/proc/sys/kernel/random/boot_id") as f:
            return f.read().strip()
    except OSError:
        return ""


def _io_error(action: str, exc: OSError) -> CNIError:
    """The action names the path, so the reason is enough (not Python's "[Errno 20] ...: 'path'")."""
    return CNIError(ErrorCode.IO_FAILURE, f"host-local store: {action}: {exc.strerror or exc}")


# --- the disk store ----------------------------------------------------------------------


class DiskStore:
    """The network directory, opened under its flock with a fresh index."""

    def __init__(self, directory: str, index: Index) -> None:
        self.directory = directory
        self._index = index

    # freshness: a stamp of the directory; any change by anyone else changes its mtime

    def stamp(self) -> str:
        st = os.stat(self.directory)
        return f"{st.st_dev}:{st.st_ino}:{st.st_mtime_ns}:{_boot_id()}"

    def refresh_index(self) -> bool:
        """Rebuild the index from the files if the directory changed behind its back."""
        if self._index.stamp and self._index.stamp == self.stamp():
            return False
        self._index.replace_all(self.scan())
        return True

    def scan(self) -> list[Reservation]:
        """Every address file; scratch files left by a killed process are removed."""
        found = []
        dir_fd = os.open(self.directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            for name in os.listdir(dir_fd):
                if name.startswith(SCRATCH_PREFIX):
                    self._remove(name)
                    continue
                reservation = self._read_reservation(name, dir_fd)
                if reservation is not None:
                    found.append(reservation)
        finally:
            os.close(dir_fd)
        return found

    def _read_reservation(self, name: str, dir_fd: int | None = None) -> Reservation | None:
        address = address_of_name(name)
        if address is None:
            return None  # lock, last_reserved_ip.*, anything else
        path = name if dir_fd is not None else os.path.join(self.directory, name)
        data = read_nofollow(path, dir_fd)
        if data is None:
            return None
        container_id, ifname = parse_content(data)
        return Reservation(name, address[0], address[1], container_id, ifname)

    def _remove(self, name: str) -> bool:
        try:
            os.unlink(os.path.join(self.directory, name))
        except FileNotFoundError:
            return False
        except OSError as exc:
            raise _io_error(f"remove {name}", exc) from exc
        return True

    def finish(self) -> str:
        """Return the stamp to record for the next caller (our changes need no directory fsync:
        a crash reboots, and a new boot id rebuilds the index from whatever files survived)."""
        stamp = self.stamp()
        mtime_ns = _mtime_ns(stamp)
        if mtime_ns % 10_000_000 == 0:
            return ""  # whole-second (or 10 ms) timestamps: too coarse to tell, rebuild next time
        tick = time.clock_gettime_ns(_CLOCK_REALTIME_COARSE)
        if tick > mtime_ns:
            return stamp  # the clock tick of our last change is over: any later change shows
        # A later change within this clock tick could keep this mtime, unless the file
        # system stamps a change after a stat with a finer time; else wait the tick out.
        # (Probed every time: on 6.13+ a file system without such timestamps can still stamp
        # the probe with a finer "floor" time that another file system's change set, so one
        # answer must not be remembered.)
        stamp, fine = self._probe_fine_mtimes(mtime_ns, tick)
        if fine:
            return stamp
        return stamp if _settle(_mtime_ns(stamp)) else ""

    def _probe_fine_mtimes(self, mtime_ns: int, tick: int) -> tuple[str, bool]:
        """Change the directory right after a stat: (its new stamp, whether that change got a
        finer time than the clock tick, as "multigrain" timestamps do: Linux 6.13+ on ext4,
        xfs, btrfs, tmpfs). If so, the next change after our last stat will differ too."""
        probe = os.path.join(self.directory, f"{SCRATCH_PREFIX}probe.{os.getpid()}")
        try:
            os.close(os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600))
            os.unlink(probe)
        except OSError:
            return self.stamp(), False
        stamp = self.stamp()
        probed_ns = _mtime_ns(stamp)
        now = time.clock_gettime_ns(_CLOCK_REALTIME_COARSE)
        # Coarse-only timestamps give the probe this tick's time, which our last change had
        # too, or a later tick's, which the clock then shows.
        return stamp, probed_ns != mtime_ns and (now == tick or probed_ns > now)

    # --- Store protocol ---------------------------------------------------------------------

    def reserve(self, ip: Address, container_id: str, ifname: str, range_index: int) -> bool:
        name = str(ip)
        if self._index.get(name) is not None:
            return False
        if not self._claim(name, file_content(container_id, ifname)):
            learned = self._read_reservation(name)  # a file the index did not know about
            if learned is not None:
                self._index.add(learned)
            return False
        self._index.add(Reservation(name, ip.version, int(ip), container_id.strip(), ifname))
        try:
            self._write_last_reserved(range_index, name)
        except CNIError:
            self.release(ip)  # the caller never learns of this address: do not keep it
            raise
        return True

    def release(self, ip: Address) -> None:
        self._remove(str(ip))
        self._index.remove(str(ip))

    def held_by(self, container_id: str, ifname: str) -> list[Address]:
        """What the reference's GetByID finds: exact matches and legacy cid-only files."""
        held = self._index.by_attachment(container_id, ifname) + self._index.by_attachment(container_id, None)
        return [address_from_int(r.family, r.number) for r in held]

    def last_reserved(self, range_index: int) -> Address | None:
        data = read_nofollow(os.path.join(self.directory, f"{LAST_RESERVED_PREFIX}{range_index}"))
        try:  # untrimmed, as Go's net.ParseIP reads it: "10.1.0.9\n" is no address
            return parse_ip(data.decode()) if data else None
        except (ValueError, UnicodeDecodeError):
            return None  # as the reference: lose round-robin once

    def taken_between(self, family: int, first: int, last: int, limit: int) -> list[int]:
        return self._index.taken_between(family, first, last, limit)

    # --- beyond the allocator -----------------------------------------------------------------

    def count_between(self, family: int, first: int, last: int) -> int:
        return self._index.count_between(family, first, last)

    def reservations(self) -> list[Reservation]:
        return self._index.all()

    def attachment_reservations(self, container_id: str, ifname: str) -> list[Reservation]:
        """The reference's release rule: exact (cid, ifname) files, else the legacy cid-only ones."""
        return self.exact_reservations(container_id, ifname) or self.legacy_reservations(container_id)

    def exact_reservations(self, container_id: str, ifname: str) -> list[Reservation]:
        return self._index.by_attachment(container_id, ifname)

    def legacy_reservations(self, container_id: str) -> list[Reservation]:
        """The files of versions before 2018, which name only the container."""
        return self._index.by_attachment(container_id, None)

    def release_reservation(self, reservation: Reservation) -> bool:
        """Remove one address file, after checking it still holds what the index says."""
        on_disk = self._read_reservation(reservation.name)
        if on_disk is not None and (on_disk.container_id, on_disk.ifname) != (
            reservation.container_id,
            reservation.ifname,
        ):
            self._index.add(on_disk)
            return False
        removed = self._remove(reservation.name)
        self._index.remove(reservation.name)
        return removed

    # --- writing files ------------------------------------------------------------------------

    def _write_scratch(self, name: str, data: bytes, mode: int) -> str:
        scratch = os.path.join(self.directory, f"{SCRATCH_PREFIX}{name}.{os.getpid()}")
        flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC
        fd = os.open(scratch, flags, mode)
        try:
            os.fchmod(fd, mode)
            os.write(fd, data)
        finally:
            os.close(fd)
        return scratch

    def _claim(self, name: str, data: bytes) -> bool:
        """Create the address file whole, or return False if it exists."""
        target = os.path.join(self.directory, name)
        try:
            scratch = self._write_scratch(name, data, _IP_FILE_MODE)
            try:
                os.link(scratch, target)
            except FileExistsError:
                return False
            except OSError as exc:
                if exc.errno not in _NO_HARD_LINKS:
                    raise
                return _create_exclusive(target, data)
            finally:
                os.unlink(scratch)
        except OSError as exc:
            raise _io_error(f"reserve {name}", exc) from exc
        return True

    def _write_last_reserved(self, range_index: int, name: str) -> None:
        target = f"{LAST_RESERVED_PREFIX}{range_index}"
        path = os.path.join(self.directory, target)
        data = name.encode()
        try:
            if not _overwrite_plain_file(path, data, _LAST_RESERVED_MODE):
                scratch = self._write_scratch(target, data, _LAST_RESERVED_MODE)
                try:
                    os.replace(scratch, path)  # a symlink or a FIFO there is replaced, not followed
                except OSError:
                    os.unlink(scratch)
                    raise
        except OSError as exc:
            raise _io_error(f"write {target}", exc) from exc


def _overwrite_plain_file(path: str, data: bytes, mode: int) -> bool:
    """Write `data` over the regular file at `path` (created if absent) and cut it to length;
    False, writing nothing, when something else is there (a symlink, a FIFO)."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
    try:
        fd = os.open(path, flags, mode)
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENXIO):  # a symlink; a FIFO nobody reads
            return False
        raise
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            return False
        if stat.S_IMODE(info.st_mode) != mode:
            os.fchmod(fd, mode)  # created under the caller's umask
        os.pwrite(fd, data, 0)
        os.ftruncate(fd, len(data))
    finally:
        os.close(fd)
    return True


def _create_exclusive(path: str, data: bytes) -> bool:
    """The reference's way (O_EXCL, then write), for file systems without hard links."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, _IP_FILE_MODE)
    except FileExistsError:
        return False
    try:
        os.write(fd, data)
    except OSError:
        os.unlink(path)
        raise
    finally:
        os.close(fd)
    return True


def _mtime_ns(stamp: str) -> int:
    return int(stamp.split(":")[2])


def _settle(mtime_ns: int) -> bool:
    """Wait until the coarse clock has passed `mtime_ns`; False if that takes too long."""
    deadline = time.monotonic() + _SETTLE_LIMIT_S
    while time.clock_gettime_ns(_CLOCK_REALTIME_COARSE) <= mtime_ns:
        if time.monotonic() > deadline:
            return False
        time.sleep(0.0005)
    return True


def _open_index(path: str) -> Index:
    """The index, recreated when its file is damaged (it is only a cache)."""
    try:
        if index_module.is_truncated(path):
            index_module.remove_index(path)
        try:
            return Index(path)
        except sqlite3.DatabaseError:
            index_module.remove_index(path)
        return Index(path)
    except (OSError, sqlite3.Error) as exc:
        raise CNIError(ErrorCode.IO_FAILURE, f"host-local store: index {path}: {exc}") from exc


def _close_index(store: DiskStore, index: Index, path: str) -> None:
    """Record the directory's stamp; an empty network keeps no index, as the Go plugin keeps none."""
    empty = index.is_empty()
    index.set_stamp(store.finish())
    index.close()
    if empty:
        index_module.remove_index(path)


@contextmanager
def open_store(data_dir: str, network: str) -> Iterator[DiskStore]:
    """The network's store, locked for the whole block; created if missing (mode 0755)."""
    directory = network_dir(data_dir, network)
    try:
        os.makedirs(directory, mode=0o755, exist_ok=True)
        lock_fd = os.open(
            os.path.join(directory, LOCK_FILE), os.O_RDONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600
        )
    except OSError as exc:
        raise _io_error(f"open {directory}", exc) from exc
    try:
        fcntl.flock(lock_fd, fcntl.LOCK_EX)
        path = index_module.index_path(data_dir, network)
        index = _open_index(path)
        store = DiskStore(directory, index)
        try:
            store.refresh_index()
            yield store
        except CNIError:
            _close_index(store, index, path)  # a refusal: files and index still agree
            raise
        except sqlite3.DatabaseError as exc:
            index.discard()
            index_module.remove_index(path)  # the files are the truth: the next call rebuilds
            raise CNIError(ErrorCode.IO_FAILURE, f"host-local store: index {path} damaged, removed: {exc}") from exc
        except BaseException:
            with suppress(sqlite3.Error):  # a rebuild that failed half-way left no index open
                index.set_stamp("")  # anything else: do not trust this index next time
                index.close()
            raise
        _close_index(store, index, path)
    finally:
        os.close(lock_fd)  # closing the descriptor drops the flock
