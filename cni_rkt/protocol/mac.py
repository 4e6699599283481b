"""MAC addresses in every form Go's net.ParseMAC reads, so that a config the reference
plugins accept is accepted here too: hex pairs joined by ':' or '-', or hex quads joined
by '.', for EUI-48, EUI-64 or a 20-byte IPoIB address."""

from __future__ import annotations

import string

GO_MAC_SIZES = (6, 8, 20)


def parse_go_mac(text: str) -> bytes | None:
    """The address's bytes, or None where net.ParseMAC fails."""
    for separator, width in ((":", 2), ("-", 2), (".", 4)):
        groups = text.split(separator)
        if len(groups) > 1:
            if not all(len(g) == width and all(c in string.hexdigits for c in g) for g in groups):
                return None
            raw = bytes.fromhex("".join(groups))
            return raw if len(raw) in GO_MAC_SIZES else None
    return None
