"""Finding and Report: what the checks produce and the reporters consume."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field, replace


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


@dataclass(frozen=True, slots=True)
class Finding:
    path: str  # as given on the command line ("<stdin>" for stdin)
    pointer: str  # JSON pointer into the document; "" for the whole file
    line: int
    col: int
    severity: Severity
    rule: str  # stable rule id, e.g. CNI200
    message: str

    def with_severity(self, severity: Severity) -> "Finding":
        return replace(self, severity=severity)

    def sort_key(self) -> tuple:
        return (self.path, self.line, self.col, self.rule, self.message)


@dataclass(slots=True)
class Report:
    findings: list[Finding] = field(default_factory=list)
    files: list[str] = field(default_factory=list)  # every input that was checked
    sources: dict[str, str] = field(default_factory=dict)  # path -> text, for snippets
    unreadable: list[str] = field(default_factory=list)  # inputs that could not be read

    def add(self, finding: Finding) -> None:
        self.findings.append(finding)

    def sorted_findings(self) -> list[Finding]:
        return sorted(set(self.findings), key=Finding.sort_key)

    def count(self, at_least: Severity) -> int:
        return sum(1 for f in self.findings if f.severity >= at_least)
