"""Paths in the commands' text output."""

from __future__ import annotations

import os


def shown(path: str) -> str:
    """A path as text, its bytes that are not UTF-8 escaped (a UTF-8 locale's stdout would refuse them)."""
    return os.fsencode(path).decode(errors="backslashreplace")
