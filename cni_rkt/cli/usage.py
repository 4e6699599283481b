"""Bad command-line input, shared by the subcommands: its exception and the `--valid CID[:IFNAME]` syntax
of `exec gc` and `ipam reclaim`."""

from __future__ import annotations


class UsageError(Exception):
    """Bad command-line input: exit 2 (a ValueError from elsewhere is no usage error)."""


def parse_valid(items: list[str]) -> list[tuple[str, str | None]]:
    """--valid items as (CID, IFNAME), IFNAME None for a CID given alone."""
    valid = []
    for item in items:
        container_id, sep, ifname = item.partition(":")
        if not container_id:
            raise UsageError(f"--valid: {item!r} names no container id")
        if sep and not ifname:
            raise UsageError(f"--valid: {item!r} names no interface (give CID or CID:IFNAME)")
        valid.append((container_id, ifname or None))
    return valid
