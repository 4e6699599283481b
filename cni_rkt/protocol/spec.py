"""Spec versions, verbs and the predicates that depend on them.

Pure (stdlib and the leaf cni_rkt.errors): VERSION is answered from here without importing any plugin.
"""

from __future__ import annotations

import re

from cni_rkt.errors import go_quote

SUPPORTED_VERSIONS: tuple[str, ...] = ("0.1.0", "0.2.0", "0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0")
CURRENT_VERSION = "1.1.0"
# A config without cniVersion is 0.1.0, as libcni and skel read it.
IMPLICIT_VERSION = "0.1.0"

VERBS: tuple[str, ...] = ("ADD", "DEL", "CHECK", "VERSION", "STATUS", "GC")

# The name and container-id pattern of the spec (pkg/utils in the Go library). \Z, not $:
# Python's $ also matches before a final newline, Go's only at the very end.
NAME_PATTERN = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.\-]*\Z")
MAX_IFNAME_LENGTH = 15


def go_is_space(char: str) -> bool:
    """Go's unicode.IsSpace, which interface-name checks use: Python's isspace() less the
    separators U+001C..U+001F (the kernel takes those in a name too)."""
    return char.isspace() and not "\x1c" <= char <= "\x1f"


def ifname_size(name: str) -> int:
    """An interface name's length as the kernel and Go count it: UTF-8 bytes
    (UnicodeEncodeError for text that has no UTF-8 form, a lone surrogate)."""
    return len(name.encode())

# Where GC finds the runtime's live attachments; libcni sends both, older ones only the second.
VALID_ATTACHMENTS_KEYS: tuple[str, str] = ("cni.dev/valid-attachments", "cni.dev/attachments")


def version_tuple(version: str) -> tuple[int, int, int]:
    """'0.3.1' -> (0, 3, 1); raises ValueError for anything that is not x.y.z."""
    parts = version.split(".")
    if len(parts) != 3:
        raise ValueError(version)
    major, minor, patch = (int(p) for p in parts)
    return major, minor, patch


_GO_INT = re.compile(r"[+-]?[0-9]+\Z")  # what Go's strconv.Atoi takes


def compare_key(version: str) -> tuple[int, int, int]:
    """A config version as skel compares it: "1.0" is 1.0.0, "01.0.0" is 1.0.0; ValueError,
    with skel's message, for anything it cannot compare."""
    parts = version.split(".")
    if len(parts) > 3:
        raise ValueError(f"invalid version {go_quote(version)}: too many parts")
    numbers = [0, 0, 0]
    for n, (part, name) in enumerate(zip(parts, ("major", "minor", "micro"))):
        if not _GO_INT.match(part):
            reason = "invalid syntax"
        elif not -(2**63) <= int(part) < 2**63:
            reason = "value out of range"
        else:
            numbers[n] = int(part)
            continue
        quoted = go_quote(part)
        raise ValueError(f"failed to convert {name} version part {quoted}: strconv.Atoi: parsing {quoted}: {reason}")
    return numbers[0], numbers[1], numbers[2]


def is_legacy_result(version: str) -> bool:
    """0.1.0 and 0.2.0 print the ip4/ip6 result shape that rkt reads."""
    return version_tuple(version) < (0, 3, 0)


def has_ip_version_field(version: str) -> bool:
    """0.3.x and 0.4.0 results carry ips[].version."""
    return (0, 3, 0) <= version_tuple(version) < (1, 0, 0)


def supports_check(version: str) -> bool:
    return version_tuple(version) >= (0, 4, 0)


def is_v1_1(version: str) -> bool:
    return version_tuple(version) >= (1, 1, 0)


def highest_supported(versions: list[str]) -> str | None:
    """Pick the highest of a config's `cniVersions` that we support, as libcni does."""
    best: str | None = None
    for version in versions:
        if version in SUPPORTED_VERSIONS and (best is None or version_tuple(version) > version_tuple(best)):
            best = version
    return best
