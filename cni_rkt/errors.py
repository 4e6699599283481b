"""The one error type a plugin raises: the CNI spec's error object.

A leaf module: it imports nothing from cni_rkt, so every layer may raise it.

    CNIError(code, msg, details)
        raised anywhere, rendered once by protocol.runner as the spec's error JSON
        on stdout with exit status 1.
"""

from __future__ import annotations


class ErrorCode:
    """Well-known error codes of the CNI spec (0-99 are reserved for it)."""

    INCOMPATIBLE_VERSION = 1
    UNSUPPORTED_FIELD = 2
    UNKNOWN_CONTAINER = 3
    INVALID_ENVIRONMENT = 4
    IO_FAILURE = 5
    DECODING_FAILURE = 6
    INVALID_NETWORK_CONFIG = 7
    TRY_AGAIN_LATER = 11
    NOT_AVAILABLE = 50  # STATUS: the plugin cannot service ADD now
    NOT_AVAILABLE_LIMITED = 51  # STATUS: and existing pods may have limited connectivity
    INTERNAL = 999  # the Go library's catch-all, kept for errors we did not foresee


class CNIError(Exception):
    """A failure to report to the runtime as the spec's error JSON."""

    def __init__(self, code: int, msg: str, details: str = "") -> None:
        super().__init__(msg)
        self.code = code
        self.msg = msg
        self.details = details

    def __str__(self) -> str:
        return f"{self.msg}; {self.details}" if self.details else self.msg

    def __repr__(self) -> str:
        return f"CNIError({self.code}, {self.msg!r}, {self.details!r})"

    def to_dict(self, cni_version: str = "") -> dict:
        """The spec's error object; Go omits cniVersion, we add it when known."""
        out: dict = {}
        if cni_version:
            out["cniVersion"] = cni_version
        out["code"] = self.code
        out["msg"] = self.msg
        if self.details:
            out["details"] = self.details
        return out


_GO_ESCAPES = {"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\v": "\\v",
               "\\": "\\\\", '"': '\\"'}


def go_quote(text: str) -> str:
    """Go's %q, which the reference's messages use to quote what the runtime sent."""
    out = []
    for char in text:
        if char in _GO_ESCAPES:
            out.append(_GO_ESCAPES[char])
        elif char.isprintable():
            out.append(char)
        elif "\udc80" <= char <= "\udcff":  # a byte of the environment that is not UTF-8
            out.append(f"\\x{ord(char) - 0xDC00:02x}")
        elif ord(char) < 0x80:
            out.append(f"\\x{ord(char):02x}")
        elif ord(char) < 0x10000:
            out.append(f"\\u{ord(char):04x}")
        else:
            out.append(f"\\U{ord(char):08x}")
    return '"' + "".join(out) + '"'


def invalid_config(msg: str, details: str = "") -> CNIError:
    return CNIError(ErrorCode.INVALID_NETWORK_CONFIG, msg, details)


def internal(msg: str, details: str = "") -> CNIError:
    return CNIError(ErrorCode.INTERNAL, msg, details)
