"""Output formats by name: text (gcc-style with a source snippet), json, sarif 2.1.0, github."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from io import TextIOBase as TextIO

from cni_rkt import __version__
from cni_rkt.cli.shown import shown_text
from cni_rkt.validate.findings import Finding, Report, Severity
from cni_rkt.validate.rules import RULES

TOOL_NAME = "cni-rkt validate"
REPORT_FORMAT_VERSION = 1
_COLOURS = {Severity.ERROR: "\033[1;31m", Severity.WARNING: "\033[1;33m", Severity.INFO: "\033[1;36m"}
_RESET, _BOLD, _DIM = "\033[0m", "\033[1m", "\033[2m"


def render_text(report: Report, out: TextIO, *, color: bool = False) -> None:
    def paint(code: str, text: str) -> str:
        return f"{code}{text}{_RESET}" if color else text

    for finding in report.sorted_findings():
        level = paint(_COLOURS[finding.severity], str(finding.severity))
        # A file name or key with a newline or a terminal escape must not forge a finding's line.
        location = paint(_BOLD, f"{shown_text(finding.path)}:{finding.line}:{finding.col}:")
        out.write(f"{location} {level}: {shown_text(finding.message)} {paint(_DIM, f'[{finding.rule}]')}\n")
        snippet = source_snippet(report.sources.get(finding.path), finding.line, finding.col)
        if snippet:
            out.write(snippet)
    counts = {s: sum(1 for f in report.findings if f.severity == s) for s in Severity}
    out.write(f"{counts[Severity.ERROR]} error(s), {counts[Severity.WARNING]} warning(s), "
              f"{counts[Severity.INFO]} info in {len(report.files)} file(s)\n")


def source_snippet(text: str | None, line: int, col: int) -> str:
    """The line with a caret under the column, and '~' under the rest of a quoted token."""
    if text is None:
        return ""
    lines = text.split("\n")
    if not 1 <= line <= len(lines):
        return ""
    source = lines[line - 1].rstrip("\r").expandtabs(1)
    source = "".join(c if c.isprintable() else "\ufffd" for c in source)  # one column each, as the caret counts
    width = 1
    if source[col - 1 : col] == '"':
        closing = source.find('"', col)
        width = closing - col + 2 if closing >= 0 else 1
    gutter = f"{line:>5} | "
    return f"{gutter}{source}\n{' ' * (len(gutter) - 2)}| {' ' * (col - 1)}^{'~' * (width - 1)}\n"


def finding_dict(finding: Finding) -> dict:
    return {"path": finding.path, "pointer": finding.pointer, "line": finding.line, "col": finding.col,
            "severity": str(finding.severity), "rule": finding.rule, "message": finding.message}


def render_json(report: Report, out: TextIO, *, color: bool = False) -> None:
    document = {
        "version": REPORT_FORMAT_VERSION,
        "tool": {"name": TOOL_NAME, "version": __version__},
        "files": report.files,
        "unreadable": report.unreadable,
        "summary": {str(s): sum(1 for f in report.findings if f.severity == s) for s in Severity},
        "findings": [finding_dict(f) for f in report.sorted_findings()],
    }
    json.dump(document, out, indent=2)
    out.write("\n")


SARIF_LEVELS = {Severity.ERROR: "error", Severity.WARNING: "warning", Severity.INFO: "note"}


def artifact_uri(path: str) -> str:
    from urllib.parse import quote  # only the SARIF format needs it

    if os.path.isabs(path):
        return "file://" + quote(path.replace(os.sep, "/"))
    return quote(path.replace(os.sep, "/"))


def render_sarif(report: Report, out: TextIO, *, color: bool = False) -> None:
    rule_ids = sorted(RULES)
    index = {rule_id: i for i, rule_id in enumerate(rule_ids)}
    rules = [{"id": r, "name": r, "shortDescription": {"text": RULES[r].summary},
              "defaultConfiguration": {"level": SARIF_LEVELS[RULES[r].severity]}} for r in rule_ids]
    results = []
    for finding in report.sorted_findings():
        results.append({
            "ruleId": finding.rule, "ruleIndex": index[finding.rule], "level": SARIF_LEVELS[finding.severity],
            "message": {"text": finding.message},
            "locations": [{"physicalLocation": {
                "artifactLocation": {"uri": artifact_uri(finding.path)},
                "region": {"startLine": finding.line, "startColumn": finding.col}}}],
        })
    sarif = {
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {"name": TOOL_NAME, "version": __version__, "rules": rules}},
            "columnKind": "unicodeCodePoints",
            "results": results,
        }],
    }
    json.dump(sarif, out, indent=2)
    out.write("\n")


GITHUB_COMMANDS = {Severity.ERROR: "error", Severity.WARNING: "warning", Severity.INFO: "notice"}


def _escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")


def render_github(report: Report, out: TextIO, *, color: bool = False) -> None:
    """GitHub Actions workflow commands: one annotation per finding."""
    for finding in report.sorted_findings():
        props = (f"file={_escape_property(finding.path)},line={finding.line},col={finding.col},"
                 f"title={_escape_property(finding.rule)}")
        out.write(f"::{GITHUB_COMMANDS[finding.severity]} {props}::{_escape_data(finding.message)}"
                  f" [{finding.rule}]\n")


REPORTERS: dict[str, Callable[..., None]] = {
    "text": render_text,
    "json": render_json,
    "sarif": render_sarif,
    "github": render_github,
}
