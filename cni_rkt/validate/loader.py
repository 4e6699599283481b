"""Command-line inputs -> what to check: files, directories (loader mode), globs, stdin, manifests."""

from __future__ import annotations

import os

from cni_rkt.validate.document import Document

STDIN = "-"
MANIFEST_EXTENSIONS = (".yaml", ".yml")


class Inputs:
    __slots__ = ("files", "directories", "manifests", "stdin", "unreadable")

    def __init__(self):
        self.files: list[str] = []
        self.directories: list[str] = []
        self.manifests: list[str] = []
        self.stdin = False
        self.unreadable: list[tuple[str, str]] = []  # (path, why)


def expand_inputs(paths: list[str]) -> Inputs:
    inputs = Inputs()
    for path in paths:
        if path == STDIN:
            inputs.stdin = True
        elif os.path.isdir(path):
            inputs.directories.append(path)
        elif os.path.exists(path):
            add_file(inputs, path)
        elif any(char in path for char in "*?["):
            import glob  # only for patterns the shell did not expand

            matches = sorted(glob.glob(path))
            if not matches:
                inputs.unreadable.append((path, "no file matches this pattern"))
            for match in matches:
                if os.path.isdir(match):
                    inputs.directories.append(match)
                else:
                    add_file(inputs, match)
        else:
            inputs.unreadable.append((path, "no such file or directory"))
    return inputs


def add_file(inputs: Inputs, path: str) -> None:
    if path.endswith(MANIFEST_EXTENSIONS):
        inputs.manifests.append(path)
    else:
        inputs.files.append(path)


def read_text(path: str) -> str:
    """The file as text; OSError for a file that cannot be read. Bytes that are not UTF-8 are kept
    visible (as replacement characters) so the parser reports them at their line."""
    with open(path, "rb") as handle:
        return handle.read().decode("utf-8", errors="replace")


def load_document(path: str) -> Document:
    return Document.from_text(path, read_text(path))


def list_directory(directory: str) -> list[str]:
    """Regular files directly in `directory`, sorted by name (like rkt and libcni; no recursion)."""
    return sorted(
        name for name in os.listdir(directory) if os.path.isfile(os.path.join(directory, name))
    )
