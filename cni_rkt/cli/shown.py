"""Paths and file contents in the commands' text output."""

from __future__ import annotations

import os


def shown(path: str) -> str:
    """A path as text, its bytes that are not UTF-8 escaped (a UTF-8 locale's stdout would refuse them)."""
    return os.fsencode(path).decode(errors="backslashreplace")


def shown_text(text: str) -> str:
    """Text read from a file, its characters that are not printable escaped: a container id
    holding a newline or a terminal escape must not forge lines or colours in a listing."""
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii")
                   for c in text)
