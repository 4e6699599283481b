"""Typed reads of config values: JSON's words in the message, the key in the details."""

import pytest

from cni_rkt.errors import CNIError
from cni_rkt.protocol.json_values import expect, expect_path, optional


@pytest.mark.parametrize(
    "value, kind, message",
    [
        (True, int, "k must be an integer, got true"),  # Go does not take a boolean for a number
        ("x", dict, 'k must be a JSON object, got "x"'),
        ({"a": None}, list, 'k must be a list, got {"a": null}'),
        (5, str, "k must be a string, got 5"),
        (1, bool, "k must be a boolean, got 1"),
    ],
)
def test_a_value_of_another_json_type_is_code_7_in_json_words(value, kind, message):
    with pytest.raises(CNIError) as caught:
        expect(value, kind, "k")
    assert (caught.value.code, caught.value.msg, caught.value.details) == (7, message, "k")


def test_absent_and_null_read_as_empty_as_go_decodes_them():
    assert optional({}, "a", list, "a") == [] and optional({"a": None}, "a", dict, "a") == {}
    assert optional({"a": [1]}, "a", list, "a") == [1]


def test_a_path_with_a_nul_byte_is_refused_naming_the_key():
    assert expect_path("/run/x", "p") == "/run/x"
    with pytest.raises(CNIError) as caught:
        expect_path("/run/a\0b", "p")
    assert caught.value.msg == 'p must not contain a NUL byte, got "/run/a\\u0000b"'
