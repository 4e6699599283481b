"""A strict JSON parser that remembers where every key and value starts.

The standard library's `json` keeps the last duplicate key silently and reports errors by
offset only. The linter needs line and column for every JSON pointer, every duplicate key,
and syntax errors phrased for people who hand-edit net.d files (comments, trailing commas,
unquoted keys and template placeholders are the usual culprits).
"""

from __future__ import annotations

import bisect
import json
import re
from collections import namedtuple

_WHITESPACE = re.compile(r"[ \t\n\r]*")
_STRING = re.compile(r'"(?:[^"\\\x00-\x1f]|\\.)*"', re.DOTALL)
_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?")
_BAREWORD = re.compile(r"[A-Za-z_$][A-Za-z0-9_$.\-]*")
_LITERALS = {"true": True, "false": False, "null": None}
MAX_DEPTH = 256  # deeper nesting is no network configuration; refuse it before Python's stack runs out


# line and col are 1-based; col counts characters.
Position = namedtuple("Position", "line col")
# position: the later occurrence (the one Go keeps); first: where the key was written first.
DuplicateKey = namedtuple("DuplicateKey", "pointer key position first")


class JSONSyntaxError(ValueError):
    """The text is not one strict JSON value; `position` says where reading stopped."""

    def __init__(self, message: str, position: Position):
        super().__init__(f"{position.line}:{position.col}: {message}")
        self.message = message
        self.position = position


class ParsedJSON:
    """The value (like json.loads, last duplicate wins) and where each JSON pointer is written."""

    __slots__ = ("value", "key_positions", "value_positions", "duplicates")

    def __init__(self, value: object):
        self.value = value
        self.key_positions: dict[str, Position] = {}
        self.value_positions: dict[str, Position] = {}
        self.duplicates: list[DuplicateKey] = []

    def locate(self, pointer: str, *, key: bool = False) -> Position:
        """Where `pointer` is written; falls back to the nearest enclosing value."""
        table = self.key_positions if key else self.value_positions
        while True:
            if pointer in table:
                return table[pointer]
            if pointer in self.value_positions:
                return self.value_positions[pointer]
            if not pointer:
                return Position(1, 1)
            pointer = pointer.rsplit("/", 1)[0]


def escape_pointer_token(token: str) -> str:
    return token.replace("~", "~0").replace("/", "~1")


def parse_json(text: str) -> ParsedJSON:
    """Parse one strict JSON document; raise JSONSyntaxError with a line and column."""
    return _Parser(text).parse_document()


class _Parser:
    def __init__(self, text: str):
        self.text = text
        self.index = 0
        self.line_starts = [0] + [m.end() for m in re.finditer("\n", text)]
        self.result = ParsedJSON(None)
        self.depth = 0

    # -- positions and errors -------------------------------------------------------------
    def position(self, offset: int) -> Position:
        line = bisect.bisect_right(self.line_starts, offset)
        return Position(line, offset - self.line_starts[line - 1] + 1)

    def fail(self, message: str, offset: int | None = None) -> JSONSyntaxError:
        return JSONSyntaxError(message, self.position(self.index if offset is None else offset))

    def skip_space(self) -> None:
        self.index = _WHITESPACE.match(self.text, self.index).end()

    def peek(self) -> str:
        return self.text[self.index : self.index + 1]

    # -- grammar --------------------------------------------------------------------------
    def parse_document(self) -> ParsedJSON:
        if self.text.startswith("\ufeff"):
            raise self.fail("the file starts with a byte order mark (U+FEFF); the Go decoder rejects it: save "
                            "the file as UTF-8 without BOM")
        self.skip_space()
        if self.index == len(self.text):
            raise self.fail("the file is empty: expected a JSON object")
        self.result.value = self.parse_value("")
        self.skip_space()
        if self.index < len(self.text):
            raise self.fail(
                f"extra text after the JSON value ({self.describe_here()}): a net.d file holds exactly one object"
            )
        return self.result

    def parse_value(self, pointer: str) -> object:
        self.result.value_positions[pointer] = self.position(self.index)
        char = self.peek()
        if self.text.startswith("{{", self.index):
            raise self.unexpected("a value")
        if char in "{[" and char:
            self.depth += 1
            if self.depth > MAX_DEPTH:
                raise self.fail(f"objects and arrays nested more than {MAX_DEPTH} levels deep")
            value = self.parse_object(pointer) if char == "{" else self.parse_array(pointer)
            self.depth -= 1
            return value
        if char == '"':
            return self.parse_string()
        match = _NUMBER.match(self.text, self.index)
        if match and match.end() > self.index:
            self.index = match.end()
            token = match.group()
            return float(token) if any(c in token for c in ".eE") else int(token)
        word = _BAREWORD.match(self.text, self.index)
        if word and word.group() in _LITERALS:
            self.index = word.end()
            return _LITERALS[word.group()]
        raise self.unexpected("a value")

    def parse_object(self, pointer: str) -> dict[str, object]:
        opening = self.index
        self.index += 1
        value: dict[str, object] = {}
        seen: dict[str, Position] = {}
        self.skip_space()
        if self.peek() == "}":
            self.index += 1
            return value
        while True:
            self.skip_space()
            key_offset = self.index
            if self.peek() != '"':
                raise self.unexpected("a double-quoted key", opening=opening)
            key = self.parse_string()
            child = f"{pointer}/{escape_pointer_token(key)}"
            key_position = self.position(key_offset)
            if key in seen:
                self.result.duplicates.append(DuplicateKey(child, key, key_position, seen[key]))
            seen[key] = key_position
            self.result.key_positions[child] = key_position
            self.skip_space()
            if self.peek() != ":":
                raise self.unexpected(f"':' after the key \"{key}\"")
            self.index += 1
            self.skip_space()
            value[key] = self.parse_value(child)
            if not self.after_member("}", opening, "object"):
                return value

    def parse_array(self, pointer: str) -> list[object]:
        opening = self.index
        self.index += 1
        items: list[object] = []
        self.skip_space()
        if self.peek() == "]":
            self.index += 1
            return items
        while True:
            self.skip_space()
            items.append(self.parse_value(f"{pointer}/{len(items)}"))
            if not self.after_member("]", opening, "array"):
                return items

    def after_member(self, closing: str, opening: int, kind: str) -> bool:
        """Consume ',' (True: another member follows) or the closing bracket (False)."""
        self.skip_space()
        char = self.peek()
        if char == closing:
            self.index += 1
            return False
        if char == ",":
            comma = self.index
            self.index += 1
            self.skip_space()
            if self.peek() in "}]" and self.peek():
                raise self.fail(f"trailing comma before '{self.peek()}': JSON allows no ',' after the last member", comma)
            return True
        raise self.unexpected(f"',' or '{closing}' after an {kind} member", opening=opening)

    def parse_string(self) -> str:
        match = _STRING.match(self.text, self.index)
        if not match:
            raise self.fail("unterminated string or a control character inside a string")
        try:
            value = json.loads(match.group())
        except json.JSONDecodeError as exc:
            raise self.fail(f"invalid escape in string: {exc.msg}", self.index + exc.pos) from None
        self.index = match.end()
        return value

    # -- error wording --------------------------------------------------------------------
    def describe_here(self) -> str:
        rest = self.text[self.index :]
        if not rest:
            return "end of file"
        snippet = rest.split("\n", 1)[0].strip()
        return repr(snippet[:20])

    def unexpected(self, expected: str, *, opening: int | None = None) -> JSONSyntaxError:
        rest = self.text[self.index :]
        if not rest:
            where = self.position(opening) if opening is not None else None
            unclosed = f": the bracket at line {where.line} column {where.col} is never closed" if where else ""
            # Point at the end of the last written text, not at an empty line after it.
            return self.fail(f"unexpected end of file, expected {expected}{unclosed}", len(self.text.rstrip()))
        if rest.startswith("//") or rest.startswith("/*"):
            return self.fail("comments are not allowed in JSON (plugins fail with \"invalid character '/'\")")
        if rest.startswith("{{") or rest.startswith("${") or rest.startswith("$"):
            return self.fail(f"template placeholder {self.describe_here()} where {expected} should be: render the template first")
        word = _BAREWORD.match(rest)
        if word:
            token = word.group()
            if re.fullmatch(r"__[A-Z0-9_]+__", token):
                return self.fail(f"template placeholder {token} where {expected} should be: render the template first")
            if expected == "a double-quoted key":
                return self.fail(f"object key {token} must be a double-quoted string")
            return self.fail(f"unexpected word {token!r}, expected {expected}")
        return self.fail(f"unexpected {self.describe_here()}, expected {expected}")
