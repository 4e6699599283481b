"""A rebuildable index of one network directory's reservations, in SQLite (stdlib).

The per-IP files stay the truth; the index only answers quickly what a full directory
walk would answer slowly: which addresses (container, ifname) holds, and which
addresses of a range are taken. It lives outside the network directory, at
`<dataDir>/.cni-rkt-index/<network>.sqlite`, so the Go plugin never walks over it and
the network directory holds exactly the Go plugin's files.

The index records a stamp of the directory it describes (device, inode, mtime, boot
id). The store rebuilds the index whenever the stamp differs: a change by the Go
plugin, a process killed half-way, a reboot after power loss, a damaged database file.
Writes skip fsync on purpose: a lost or torn write can only come with a crash, and the
new boot id then makes the store rebuild into a fresh file, never reading the old one.
A process killed mid-commit is covered by SQLite's rollback journal; a file shorter
than its header says (truncated behind our back) is refused before use.
"""

from __future__ import annotations

import os
import sqlite3
import struct
from collections.abc import Iterable
from dataclasses import dataclass

INDEX_DIR = ".cni-rkt-index"
_SCHEMA_VERSION = "1"
_SCHEMA = """
CREATE TABLE IF NOT EXISTS reservation (
    name TEXT PRIMARY KEY,          -- the file name in the network directory
    family INTEGER NOT NULL,        -- 4 or 6
    key TEXT NOT NULL,              -- the address as fixed-width hex: sorts like the number
    container_id TEXT NOT NULL,
    ifname TEXT                     -- NULL: a legacy file holding only the container id
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS by_address ON reservation (family, key);
CREATE INDEX IF NOT EXISTS by_attachment ON reservation (container_id, ifname);
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT) WITHOUT ROWID;
"""


@dataclass(frozen=True, slots=True)
class Reservation:
    name: str
    family: int
    number: int
    container_id: str
    ifname: str | None = None


def _key(family: int, number: int) -> str:
    return f"{number:08x}" if family == 4 else f"{number:032x}"


def _reservation(row: tuple) -> Reservation:
    name, family, key, container_id, ifname = row
    return Reservation(name, family, int(key, 16), container_id, ifname)


def index_path(data_dir: str, network: str) -> str:
    return os.path.join(data_dir, INDEX_DIR, f"{network}.sqlite")


def is_truncated(path: str) -> bool:
    """Whether the file is shorter than the pages its SQLite header counts (a missing file is not)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return False
    try:
        header, size = os.read(fd, 100), os.fstat(fd).st_size
    finally:
        os.close(fd)
    if len(header) < 100:
        return size > 0
    (page_size,) = struct.unpack_from(">H", header, 16)
    change_counter, page_count = struct.unpack_from(">II", header, 24)
    (valid_for,) = struct.unpack_from(">I", header, 92)
    if change_counter != valid_for:
        return False  # the header's page count is not maintained: SQLite goes by the file size
    return size < (65536 if page_size == 1 else page_size) * page_count


def remove_index(path: str) -> None:
    for leftover in (path, f"{path}-journal"):
        try:
            os.unlink(leftover)
        except FileNotFoundError:
            pass


class Index:
    """One open transaction on the index; the caller holds the network's flock."""

    def __init__(self, path: str) -> None:
        os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
        self._path = path
        self._connect()

    def _connect(self) -> None:
        self._db = sqlite3.connect(self._path, isolation_level=None)
        try:
            self._db.execute("PRAGMA synchronous=OFF")
            self._db.execute("BEGIN IMMEDIATE")
            if not self._schema_is_current():
                self._create_schema()
        except BaseException:
            self._db.close()
            raise

    def _schema_is_current(self) -> bool:
        """One query instead of the schema's statements on every open."""
        try:
            return self._meta("schema") == _SCHEMA_VERSION
        except sqlite3.OperationalError:  # a new file: no meta table yet
            return False

    def _create_schema(self) -> None:
        for statement in filter(str.strip, _SCHEMA.split(";")):
            self._db.execute(statement)
        if self._meta("schema") != _SCHEMA_VERSION:
            self._db.execute("DELETE FROM reservation")
            self._set_meta("schema", _SCHEMA_VERSION)
            self._set_meta("stamp", "")

    def _meta(self, name: str) -> str | None:
        row = self._db.execute("SELECT value FROM meta WHERE name = ?", (name,)).fetchone()
        return row[0] if row else None

    def _set_meta(self, name: str, value: str) -> None:
        self._db.execute("INSERT OR REPLACE INTO meta (name, value) VALUES (?, ?)", (name, value))

    # --- freshness ------------------------------------------------------------------------

    @property
    def stamp(self) -> str:
        return self._meta("stamp") or ""

    def set_stamp(self, stamp: str) -> None:
        self._set_meta("stamp", stamp)

    def replace_all(self, reservations: Iterable[Reservation]) -> None:
        """Bulk load into a fresh file (whatever the old one holds, even damage, is never read):
        rows in primary-key order, secondary indexes built afterwards (much faster)."""
        rows = sorted((r.name, r.family, _key(r.family, r.number), r.container_id, r.ifname) for r in reservations)
        self.discard()
        remove_index(self._path)
        self._connect()
        self._db.execute("DROP INDEX IF EXISTS by_address")
        self._db.execute("DROP INDEX IF EXISTS by_attachment")
        self._db.executemany("INSERT OR REPLACE INTO reservation VALUES (?, ?, ?, ?, ?)", rows)
        self._create_schema()

    # --- changes ----------------------------------------------------------------------------

    def add(self, r: Reservation) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO reservation VALUES (?, ?, ?, ?, ?)",
            (r.name, r.family, _key(r.family, r.number), r.container_id, r.ifname),
        )

    def remove(self, name: str) -> None:
        self._db.execute("DELETE FROM reservation WHERE name = ?", (name,))

    # --- queries ----------------------------------------------------------------------------

    def get(self, name: str) -> Reservation | None:
        row = self._db.execute("SELECT * FROM reservation WHERE name = ?", (name,)).fetchone()
        return _reservation(row) if row else None

    def by_attachment(self, container_id: str, ifname: str | None) -> list[Reservation]:
        """Exact (container, ifname) matches; ifname None asks for the legacy cid-only files."""
        if ifname is None:
            query = "SELECT * FROM reservation WHERE container_id = ? AND ifname IS NULL ORDER BY family, key"
            rows = self._db.execute(query, (container_id,))
        else:
            query = "SELECT * FROM reservation WHERE container_id = ? AND ifname = ? ORDER BY family, key"
            rows = self._db.execute(query, (container_id, ifname))
        return [_reservation(row) for row in rows]

    def taken_between(self, family: int, first: int, last: int, limit: int) -> list[int]:
        rows = self._db.execute(
            "SELECT key FROM reservation WHERE family = ? AND key BETWEEN ? AND ? ORDER BY key LIMIT ?",
            (family, _key(family, first), _key(family, last), limit),
        )
        return [int(key, 16) for (key,) in rows]

    def count_between(self, family: int, first: int, last: int) -> int:
        row = self._db.execute(
            "SELECT COUNT(*) FROM reservation WHERE family = ? AND key BETWEEN ? AND ?",
            (family, _key(family, first), _key(family, last)),
        ).fetchone()
        return row[0]

    def is_empty(self) -> bool:
        return self._db.execute("SELECT NOT EXISTS (SELECT 1 FROM reservation)").fetchone()[0] == 1

    def all(self) -> list[Reservation]:
        return [_reservation(row) for row in self._db.execute("SELECT * FROM reservation ORDER BY family, key")]

    def close(self) -> None:
        try:
            self._db.execute("COMMIT")
        finally:
            self._db.close()

    def discard(self) -> None:
        """Close without committing; closing rolls back, even on a damaged file."""
        self._db.close()
