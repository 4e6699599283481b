"""Finding and Report: what the checks produce and the reporters consume.

Value types in cni_rkt.validate are named tuples and small slotted classes rather than
dataclasses: importing `dataclasses` (and `inspect` with it) costs ~30 ms of CPU, a fifth of the
whole budget for validating one file.
"""

from __future__ import annotations

import enum
from collections import namedtuple


class Severity(enum.IntEnum):
    INFO = 1
    WARNING = 2
    ERROR = 3

    @classmethod
    def parse(cls, text: str) -> "Severity":
        try:
            return cls[text.strip().upper()]
        except KeyError:
            raise ValueError(f"unknown severity {text!r} (expected error, warning or info)") from None

    def __str__(self) -> str:
        return self.name.lower()


class Finding(namedtuple("Finding", "path pointer line col severity rule message")):
    """One problem: path as given ("<stdin>" for stdin), JSON pointer ("" = whole file), 1-based line
    and column, Severity, stable rule id (e.g. CNI200) and a message naming the key and value."""

    __slots__ = ()

    def with_severity(self, severity: Severity) -> "Finding":
        return self._replace(severity=severity)

    def sort_key(self) -> tuple:
        return (self.path, self.line, self.col, self.rule, self.message)


class Report:
    __slots__ = ("findings", "files", "sources", "unreadable")

    def __init__(self, findings: list[Finding] | None = None, files: list[str] | None = None,
                 sources: dict[str, str] | None = None, unreadable: list[str] | None = None):
        self.findings = findings if findings is not None else []
        self.files = files if files is not None else []  # every input that was checked
        self.sources = sources if sources is not None else {}  # path -> text, for snippets
        self.unreadable = unreadable if unreadable is not None else []  # inputs that could not be read

    def add(self, finding: Finding) -> None:
        self.findings.append(finding)

    def sorted_findings(self) -> list[Finding]:
        return sorted(set(self.findings), key=Finding.sort_key)

    def count(self, at_least: Severity) -> int:
        return sum(1 for f in self.findings if f.severity >= at_least)
