"""The rendered delegate configs, kept under dataDir from ADD until DEL succeeds.

DEL, CHECK and GC hand the delegate the bytes ADD handed it, so a net.d or subnet.env
edit between ADD and DEL cannot break teardown.

File names (dataDir defaults to /var/lib/cni/flannel):

    <cid>@<ifname>   ours: one per attachment, so two interfaces of one container
                     (two flannel networks) do not overwrite each other. A container id
                     never holds "@" (spec pattern [a-zA-Z0-9][a-zA-Z0-9_.-]*), so the
                     first "@" splits the name without ambiguity.
    <cid>            the reference plugin's form. We read it when we hold no file for that
                     container (attachments made before a switch to cni-rkt), and also write
                     it on ADD when absent, so the reference's DEL works after a switch back.
    .<name>.<random> a temporary file during an atomic write (ids never start with ".").

Writes are atomic and durable: a temp file in the same directory (0600), fsync, rename,
fsync of the directory; the directory is created 0700.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass

from cni_rkt.atomic_files import remove_if_present, write_atomically
from cni_rkt.errors import CNIError, ErrorCode
from cni_rkt.protocol import spec

SEPARATOR = "@"


@dataclass(frozen=True, slots=True)
class SavedConfig:
    path: str
    data: bytes
    container_id: str
    ifname: str | None  # None for the reference's container-id-only file


def _bad_name(variable: str, value: str) -> CNIError:
    return CNIError(ErrorCode.INVALID_ENVIRONMENT, f"{variable} {value!r} cannot name a file under the flannel dataDir")


def _check_names(container_id: str, ifname: str | None) -> None:
    """No name may leave dataDir or collide with another kind of file."""
    if not spec.NAME_PATTERN.match(container_id):
        raise _bad_name("CNI_CONTAINERID", container_id)
    if ifname is not None and (
        not ifname or ifname in (".", "..") or any(c in "/\0" or spec.go_is_space(c) for c in ifname)
    ):
        raise _bad_name("CNI_IFNAME", ifname)


def _io_error(action: str, path: str, exc: OSError) -> CNIError:
    return CNIError(ErrorCode.IO_FAILURE, f"flannel: failed to {action} {path}: {exc.strerror or exc}")


class SavedConfigs:
    """The saved delegate configs of one dataDir."""

    def __init__(self, data_dir: str) -> None:
        self.data_dir = data_dir

    def path_for(self, container_id: str, ifname: str | None) -> str:
        _check_names(container_id, ifname)
        name = container_id if ifname is None else f"{container_id}{SEPARATOR}{ifname}"
        path = os.path.join(self.data_dir, name)
        if os.path.dirname(os.path.normpath(path)) != os.path.normpath(self.data_dir):
            raise _bad_name("CNI_IFNAME", ifname or "")  # unreachable after the checks; kept as a guard
        return path

    # --- writing ----------------------------------------------------------------------

    def _write_atomically(self, path: str, data: bytes) -> None:
        write_atomically(path, data, mode=0o600, dir_mode=0o700, durable=True)

    def save(self, container_id: str, ifname: str, data: bytes) -> SavedConfig:
        """Save before the delegate runs; also the reference's file when there is none."""
        path = self.path_for(container_id, ifname)
        legacy = self.path_for(container_id, None)
        # The reference's file first: if ours then cannot be written, nothing new is left behind.
        wrote_legacy = False
        try:
            if not os.path.exists(legacy):
                self._write_atomically(legacy, data)
                wrote_legacy = True
            self._write_atomically(path, data)
        except OSError as exc:
            if wrote_legacy:
                remove_if_present(legacy)
            raise _io_error("save the delegate config to", path, exc) from exc
        return SavedConfig(path, data, container_id, ifname)

    def put_back(self, previous: SavedConfig, replaced_by: SavedConfig) -> None:
        """Undo a save() that found `previous` in place (a repeated ADD that failed)."""
        try:
            if previous.ifname is not None:
                self._write_atomically(previous.path, previous.data)
            else:
                remove_if_present(replaced_by.path)  # save() left the reference's file alone
        except OSError as exc:
            raise _io_error("restore", previous.path, exc) from exc

    # --- reading ----------------------------------------------------------------------

    def _read(self, path: str) -> bytes | None:
        try:
            with open(path, "rb") as f:
                return f.read()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise _io_error("read the saved delegate config", path, exc) from exc

    def load(self, container_id: str, ifname: str) -> SavedConfig | None:
        """Ours for this attachment, else the reference's for this container, else None.

        The container-id file counts as the reference's only while we hold no file of our
        own for that container; otherwise it is our copy for another interface.
        """
        path = self.path_for(container_id, ifname)
        data = self._read(path)
        if data is not None:
            return SavedConfig(path, data, container_id, ifname)
        legacy = self.path_for(container_id, None)
        data = self._read(legacy)
        if data is None or self.has_own_files(container_id):
            return None
        return SavedConfig(legacy, data, container_id, None)

    def has_own_files(self, container_id: str) -> bool:
        try:
            return any(name.startswith(container_id + SEPARATOR) for name in os.listdir(self.data_dir))
        except FileNotFoundError:
            return False

    def all(self) -> Iterator[SavedConfig]:
        """Every saved config in dataDir (for GC); temp files and strangers skipped."""
        try:
            names = sorted(os.listdir(self.data_dir))
        except FileNotFoundError:
            return
        except OSError as exc:
            raise _io_error("list", self.data_dir, exc) from exc
        for name in names:
            container_id, sep, ifname = name.partition(SEPARATOR)
            if not spec.NAME_PATTERN.match(container_id):
                continue
            path = os.path.join(self.data_dir, name)
            data = self._read(path) if os.path.isfile(path) else None
            if data is not None:
                yield SavedConfig(path, data, container_id, ifname if sep else None)

    # --- removing ---------------------------------------------------------------------

    def remove(self, saved: SavedConfig) -> None:
        """Forget an attachment: its file, and the reference's file if it holds the same config."""
        paths = [saved.path]
        if saved.ifname is not None:
            legacy = self.path_for(saved.container_id, None)
            if self._read(legacy) == saved.data:
                paths.append(legacy)
        for path in paths:
            try:
                remove_if_present(path)
            except OSError as exc:
                raise _io_error("remove", path, exc) from exc
