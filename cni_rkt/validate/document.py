"""Document: one input file as text, its parse (or syntax error), its kind and its findings."""

from __future__ import annotations

import os
from cni_rkt.validate.findings import Finding, Severity
from cni_rkt.validate.jsonpos import JSONSyntaxError, ParsedJSON, escape_pointer_token, parse_json
from cni_rkt.validate.rules import RULES

CONF_EXTENSIONS = (".conf", ".json")
LIST_EXTENSIONS = (".conflist",)


class Document:
    __slots__ = ("path", "text", "parsed", "syntax_error", "findings")

    def __init__(self, path: str, text: str):
        self.path = path
        self.text = text
        self.parsed: ParsedJSON | None = None
        self.syntax_error: JSONSyntaxError | None = None
        self.findings: list[Finding] = []

    @classmethod
    def from_text(cls, path: str, text: str) -> "Document":
        doc = cls(path, text)
        try:
            doc.parsed = parse_json(text)
        except JSONSyntaxError as exc:
            doc.syntax_error = exc
        return doc

    @property
    def value(self) -> object:
        return self.parsed.value if self.parsed else None

    @property
    def extension(self) -> str:
        """The extension the loaders look at (".tmpl" and the like are peeled off once)."""
        base, ext = os.path.splitext(os.path.basename(self.path))
        if ext in (".tmpl", ".template", ".in", ".j2") and os.path.splitext(base)[1]:
            return os.path.splitext(base)[1]
        return ext

    @property
    def kind(self) -> str:
        """'conflist', 'conf', or 'unknown' (not an object, or neither type nor plugins)."""
        value = self.value
        if not isinstance(value, dict):
            return "unknown"
        if "plugins" in value:
            return "conflist"
        if "type" in value:
            return "conf"
        return "unknown"

    @property
    def network_name(self) -> str | None:
        value = self.value
        name = value.get("name") if isinstance(value, dict) else None
        return name if isinstance(name, str) else None

    def plugins(self) -> list[tuple[str, dict]]:
        """(pointer, plugin object) for each plugin configuration in the file."""
        value = self.value
        if self.kind == "conf":
            return [("", value)]
        if self.kind == "conflist" and isinstance(value["plugins"], list):
            return [(f"/plugins/{i}", p) for i, p in enumerate(value["plugins"]) if isinstance(p, dict)]
        return []

    def cni_version(self) -> str | None:
        value = self.value
        version = value.get("cniVersion") if isinstance(value, dict) else None
        return version if isinstance(version, str) else None

    def emit(self, rule: str, pointer: str, message: str, *, at_key: bool = False,
             severity: Severity | None = None) -> Finding:
        if self.parsed is not None:
            position = self.parsed.locate(pointer, key=at_key)
            line, col = position.line, position.col
        else:
            line, col = 1, 1
        finding = Finding(self.path, pointer, line, col, severity or RULES[rule].severity, rule, message)
        self.findings.append(finding)
        return finding

    def emit_at(self, rule: str, line: int, col: int, message: str) -> Finding:
        finding = Finding(self.path, "", line, col, RULES[rule].severity, rule, message)
        self.findings.append(finding)
        return finding


def pointer_join(pointer: str, *tokens: object) -> str:
    return pointer + "".join(f"/{escape_pointer_token(str(t))}" for t in tokens)
