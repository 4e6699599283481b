"""libcni's result cache: `<cache dir>/<network>-<container id>-<ifname>`, one JSON file per
attachment, so DEL and CHECK can send the ADD result as prevResult and GC can find the
attachments it knows about. Same format as libcni (kind cniCacheV1), so `cni-rkt exec` and
cnitool/podman read each other's files.
"""

from __future__ import annotations

import base64
import json
import os
from dataclasses import dataclass, field

from cni_rkt.errors import CNIError, ErrorCode
from cni_rkt.runtime import load_json_object

DEFAULT_CACHE_DIR = "/var/lib/cni/results"
CACHE_KIND = "cniCacheV1"


@dataclass(frozen=True, slots=True)
class Attachment:
    """What a runtime passed for one ADD; enough to run its DEL later."""

    network: str
    container_id: str
    ifname: str
    netns: str = ""
    cni_args: tuple[tuple[str, str], ...] = ()
    capability_args: dict = field(default_factory=dict)


def cache_path(cache_dir: str, attachment: Attachment) -> str:
    # Every part was checked against the spec's patterns: none can hold a '/'.
    return os.path.join(cache_dir, f"{attachment.network}-{attachment.container_id}-{attachment.ifname}")


def render_entry(attachment: Attachment, config: bytes, result: dict) -> bytes:
    entry = {
        "kind": CACHE_KIND,
        "containerId": attachment.container_id,
        "config": base64.b64encode(config).decode(),  # Go encodes []byte as base64
        "ifName": attachment.ifname,
        "networkName": attachment.network,
    }
    if attachment.netns:
        entry["netns"] = attachment.netns
    if attachment.cni_args:
        entry["cniArgs"] = [list(pair) for pair in attachment.cni_args]
    if attachment.capability_args:
        entry["capabilityArgs"] = attachment.capability_args
    entry["result"] = result
    return json.dumps(entry).encode()


def write_entry(cache_dir: str, attachment: Attachment, config: bytes, result: dict) -> None:
    """Write beside the target, then rename: a reader never sees half an entry."""
    path = cache_path(cache_dir, attachment)
    scratch = f"{path}.tmp{os.getpid()}"
    try:
        os.makedirs(cache_dir, mode=0o700, exist_ok=True)
        fd = os.open(scratch, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(render_entry(attachment, config, result))
        os.replace(scratch, path)
    except OSError as exc:
        _remove(scratch)
        message = f'failed to set network "{attachment.network}" cached result: {exc}'
        raise CNIError(ErrorCode.IO_FAILURE, message) from exc


def read_entry(path: str) -> dict | None:
    """The entry at `path`; None when there is none; CNIError when it cannot be read."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise CNIError(ErrorCode.IO_FAILURE, f"failed to read cached result {path}: {exc.strerror}") from exc
    return load_json_object(data, f"cached result {path}")


def cached_result(cache_dir: str, attachment: Attachment) -> dict | None:
    entry = read_entry(cache_path(cache_dir, attachment))
    if entry is None:
        return None
    result = entry.get("result")
    return result if isinstance(result, dict) and result else None


def cached_config(cache_dir: str, attachment: Attachment) -> bytes | None:
    """The config bytes recorded at ADD (rkt runs DEL with its copy of the file)."""
    entry = read_entry(cache_path(cache_dir, attachment))
    try:
        return base64.b64decode(entry["config"], validate=True) if entry else None
    except (KeyError, TypeError, ValueError):
        return None


def remove_entry(cache_dir: str, attachment: Attachment) -> bool:
    return _remove(cache_path(cache_dir, attachment))


def _remove(path: str) -> bool:
    try:
        os.unlink(path)
    except FileNotFoundError:
        return False
    except OSError:
        return False  # as libcni: a stale cache entry never fails a DEL
    return True


def cached_attachments(cache_dir: str, network: str) -> list[Attachment]:
    """Every attachment of `network` the cache knows about (libcni's GetCachedAttachments)."""
    try:
        names = sorted(os.listdir(cache_dir))
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise CNIError(ErrorCode.IO_FAILURE, f"failed to list cached results in {cache_dir}: {exc.strerror}") from exc
    found = []
    for name in names:
        if not name.startswith(f"{network}-"):
            continue
        try:
            entry = read_entry(os.path.join(cache_dir, name))
        except CNIError:
            continue  # not ours to judge; libcni skips unreadable entries too
        attachment = _attachment_of(entry)
        if attachment is not None and attachment.network == network:
            found.append(attachment)
    return found


def _attachment_of(entry: dict | None) -> Attachment | None:
    if not entry or entry.get("kind") != CACHE_KIND:
        return None
    fields = (entry.get("networkName"), entry.get("containerId"), entry.get("ifName"))
    if not all(isinstance(v, str) and v for v in fields):
        return None
    pairs = entry.get("cniArgs") or []
    caps = entry.get("capabilityArgs") or {}
    return Attachment(
        network=fields[0],
        container_id=fields[1],
        ifname=fields[2],
        netns=entry.get("netns", "") if isinstance(entry.get("netns"), str) else "",
        cni_args=tuple((str(p[0]), str(p[1])) for p in pairs if isinstance(p, list) and len(p) == 2),
        capability_args=caps if isinstance(caps, dict) else {},
    )
