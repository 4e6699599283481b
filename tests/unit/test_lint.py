"""pyflakes over the code and the tests: an undefined name hides in branches tests rarely take
(a fallback for zipped installs did, until pyflakes found it)."""

import pathlib

from pyflakes import api, reporter

REPO = pathlib.Path(__file__).resolve().parents[2]


class _Collect(reporter.Reporter):
    def __init__(self):
        self.messages = []

    def unexpectedError(self, filename, message):
        self.messages.append(f"{filename}: {message}")

    def syntaxError(self, filename, message, lineno, offset, text):
        self.messages.append(f"{filename}:{lineno}: {message}")

    def flake(self, message):
        self.messages.append(str(message))


def test_pyflakes_finds_nothing():
    found = _Collect()
    api.checkRecursive([str(REPO / d) for d in ("cni_rkt", "tests", "benchmarks", "scripts")], found)
    assert found.messages == []
