"""A reader for the plain subset of YAML that Kubernetes pod manifests use.

PyYAML is not a dependency, and the stage1 rule needs only a few keys. Supported: block
mappings and sequences by indentation, `- key: value` items, plain / single / double quoted
scalars, YAML 1.1 booleans (go-yaml reads `yes` as true), comments, `---` between documents,
block scalars (`|`, `>`; kept as text), and flow collections written as JSON. Anchors, aliases,
tags and multi-line flow collections raise YamlSubsetError naming the line. A manifest may also
be plain JSON.
"""

from __future__ import annotations

import json
import re
from collections import namedtuple

_TRUE = {"true", "True", "TRUE", "yes", "Yes", "YES", "on", "On", "ON", "y", "Y"}
_FALSE = {"false", "False", "FALSE", "no", "No", "NO", "off", "Off", "OFF", "n", "N"}
_NULL = {"", "~", "null", "Null", "NULL"}
_KEY = re.compile(r"""^("(?:[^"\\]|\\.)*"|'(?:[^']|'')*'|[^'"\s#][^:#]*?)\s*:(?:\s+|$)(.*)$""")


class YamlSubsetError(ValueError):
    def __init__(self, line: int, message: str):
        super().__init__(f"line {line}: {message}")
        self.line = line


_Line = namedtuple("_Line", "number indent text")


def load_documents(text: str) -> tuple[list[object], dict[tuple, tuple[int, int]]]:
    """(documents, (line, column) of each key path); a key path starts with the document's index."""
    if text.lstrip().startswith("{"):
        return [json.loads(text)], {}
    lines: list[list[_Line]] = [[]]
    for number, raw in enumerate(text.splitlines(), start=1):
        if raw.rstrip() == "---" or raw.startswith("--- "):
            lines.append([])
            continue
        content = _strip_comment(raw).rstrip()
        if content.strip() and content.strip() != "...":
            if "\t" in raw[: len(raw) - len(raw.lstrip())]:
                raise YamlSubsetError(number, "tabs in indentation")
            lines[-1].append(_Line(number, len(content) - len(content.lstrip()), content.strip()))
    positions: dict[tuple, tuple[int, int]] = {}
    documents = []
    for block in lines:
        if block:
            reader = _Reader(block, positions, (len(documents),))
            documents.append(reader.parse())
    return documents, positions


def _strip_comment(line: str) -> str:
    quote = None
    for index, char in enumerate(line):
        if quote:
            if char == quote:
                quote = None
        elif char in "\"'":
            quote = char
        elif char == "#" and (index == 0 or line[index - 1] in " \t"):
            return line[:index]
    return line


class _Reader:
    def __init__(self, lines: list[_Line], positions: dict[tuple, int], prefix: tuple):
        self.lines, self.positions, self.prefix, self.index = lines, positions, prefix, 0

    def parse(self) -> object:
        value = self.block(self.lines[0].indent, self.prefix)
        if self.index < len(self.lines):
            raise YamlSubsetError(self.lines[self.index].number, "unexpected indentation")
        return value

    def block(self, indent: int, path: tuple) -> object:
        line = self.lines[self.index]
        if line.text == "-" or line.text.startswith("- "):
            return self.sequence(indent, path)
        if _KEY.match(line.text):
            return self.mapping(indent, path)
        self.index += 1
        return self.scalar(line.text, line.number)

    def mapping(self, indent: int, path: tuple) -> dict:
        result: dict[str, object] = {}
        while self.index < len(self.lines) and self.lines[self.index].indent == indent:
            line = self.lines[self.index]
            match = _KEY.match(line.text)
            if not match or line.text.startswith("- "):
                break
            key = self.scalar(match.group(1), line.number)
            key = str(key)
            self.positions[path + (key,)] = (line.number, line.indent + 1)
            self.index += 1
            result[key] = self.value(match.group(2), indent, path + (key,), line.number)
        return result

    def sequence(self, indent: int, path: tuple) -> list:
        items: list[object] = []
        while self.index < len(self.lines):
            line = self.lines[self.index]
            if line.indent != indent or not (line.text == "-" or line.text.startswith("- ")):
                break
            item_path = path + (len(items),)
            self.positions[item_path] = (line.number, line.indent + 1)
            rest = line.text[1:].lstrip()
            if not rest:
                self.index += 1
                items.append(self.nested(indent, item_path))
            elif _KEY.match(rest):
                # "- key: value" opens a mapping whose keys sit where "key" starts.
                self.lines[self.index] = _Line(line.number, indent + len(line.text) - len(rest), rest)
                items.append(self.mapping(indent + len(line.text) - len(rest), item_path))
            else:
                self.index += 1
                items.append(self.scalar(rest, line.number))
        return items

    def value(self, rest: str, indent: int, path: tuple, number: int) -> object:
        if rest in ("|", "|-", "|+", ">", ">-", ">+"):
            return self.block_scalar(indent)
        if rest:
            return self.scalar(rest, number)
        if self.index < len(self.lines):
            following = self.lines[self.index]
            if following.indent > indent or (following.indent == indent and following.text.startswith("- ")):
                return self.nested(indent - 1, path)
        return None

    def nested(self, indent: int, path: tuple) -> object:
        if self.index < len(self.lines) and self.lines[self.index].indent > indent:
            return self.block(self.lines[self.index].indent, path)
        return None

    def block_scalar(self, indent: int) -> str:
        parts = []
        while self.index < len(self.lines) and self.lines[self.index].indent > indent:
            parts.append(self.lines[self.index].text)
            self.index += 1
        return "\n".join(parts)

    def scalar(self, text: str, number: int) -> object:
        if text.startswith(("&", "*", "!")):
            raise YamlSubsetError(number, f"anchors, aliases and tags are not supported: {text[:20]!r}")
        if text.startswith('"'):
            try:
                return json.loads(text)
            except json.JSONDecodeError:
                raise YamlSubsetError(number, f"cannot read the quoted string {text[:30]}") from None
        if text.startswith("'"):
            if not text.endswith("'") or len(text) < 2:
                raise YamlSubsetError(number, f"unterminated quoted string {text[:30]}")
            return text[1:-1].replace("''", "'")
        if text.startswith(("[", "{")):
            try:
                return json.loads(text)
            except json.JSONDecodeError:
                raise YamlSubsetError(number, "flow collections must be written as JSON in this reader") from None
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
        if text in _NULL:
            return None
        if re.fullmatch(r"-?[0-9]+", text):
            return int(text)
        return text
