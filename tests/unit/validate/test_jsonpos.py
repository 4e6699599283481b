"""The position-tracking JSON parser: values like json.loads, positions, duplicates, errors."""

from __future__ import annotations

import json

import pytest

from cni_rkt.validate.jsonpos import JSONSyntaxError, Position, parse_json

TEXT = '{\n  "name": "a",\n  "ipam": {\n    "ranges": [[{"subnet": "10.0.0.0/24"}]],\n    "x/y": 1.5e3\n  }\n}\n'


def test_values_are_those_of_json_loads():
    assert parse_json(TEXT).value == json.loads(TEXT)


def test_positions_of_keys_and_values():
    parsed = parse_json(TEXT)
    assert parsed.key_positions["/name"] == Position(2, 3)
    assert parsed.value_positions["/name"] == Position(2, 11)
    assert parsed.value_positions["/ipam/ranges/0/0/subnet"] == Position(4, 28)
    assert parsed.key_positions["/ipam/x~1y"] == Position(5, 5)


def test_locate_falls_back_to_the_nearest_enclosing_value():
    assert parse_json(TEXT).locate("/ipam/missing") == Position(3, 11)


def test_duplicates_keep_the_last_value_and_both_positions():
    parsed = parse_json('{"a": 1,\n "a": 2}')
    assert parsed.value == {"a": 2}
    [duplicate] = parsed.duplicates
    assert (duplicate.pointer, duplicate.position, duplicate.first) == ("/a", Position(2, 2), Position(1, 2))


@pytest.mark.parametrize("text, position, words", [
    ('{"a": 1,\n}', (1, 8), "trailing comma"),
    ('[1,\n 2,\n]', (2, 3), "trailing comma"),
    ('{\n  // note\n  "a": 1}', (2, 3), "comments are not allowed"),
    ('{"a": 1\n "b": 2}', (2, 2), "expected ',' or '}'"),
    ('{a: 1}', (1, 2), "key a must be a double-quoted string"),
    ('{"mtu": __CNI_MTU__}', (1, 9), "template placeholder __CNI_MTU__"),
    ('{"h": $2}', (1, 7), "template placeholder"),
    ('[\n{{ range }}\n]', (2, 1), "template placeholder"),
    ('{"a": {"b": 1}\n\n', (1, 15), "never closed"),
    ('{"a": 1}\n{"a": 2}', (2, 1), "extra text after the JSON value"),
    ('', (1, 1), "empty"),
    ('\ufeff{}', (1, 1), "byte order mark"),
    ('{"a": "tab\there"}', (1, 7), "unterminated string or a control character"),
    ('{"a": tru}', (1, 7), "unexpected word 'tru'"),
    ('{"a": 01}', (1, 8), "expected ',' or '}'"),
])
def test_syntax_errors_say_what_and_where(text, position, words):
    with pytest.raises(JSONSyntaxError) as caught:
        parse_json(text)
    assert (caught.value.position.line, caught.value.position.col) == position
    assert words in caught.value.message
