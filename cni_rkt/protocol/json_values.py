"""Reading values out of a decoded JSON config: the wrong JSON type is a code 7 naming the key.

Go's decoder refuses a config whose value does not fit the field's type; ours says which
key and what it got, in JSON's words (`ipam.subnet must be a string, got 5`), never in
Python's (`str`, `dict`, a repr).
"""

from __future__ import annotations

import json

from cni_rkt.errors import invalid_config

_JSON_TYPE_NAMES = {dict: "a JSON object", list: "a list", str: "a string", int: "an integer", bool: "a boolean"}


def type_mismatch(value, kind: type, key: str) -> str:
    """What is wrong when `value` is not of JSON type `kind` (a boolean is no integer, as in
    Go); "" when nothing is."""
    if isinstance(value, kind) and not (kind is int and isinstance(value, bool)):
        return ""
    return f"{key} must be {_JSON_TYPE_NAMES[kind]}, got {json.dumps(value)}"


def expect(value, kind: type, key: str):
    """`value` if it is of JSON type `kind`, else code 7."""
    wrong = type_mismatch(value, kind, key)
    if wrong:
        raise invalid_config(wrong, key)
    return value


def optional(obj: dict, name: str, kind: type, key: str):
    """obj[name] checked as `expect` does; absent or null is an empty `kind`, as Go decodes it."""
    value = obj.get(name)
    return kind() if value is None else expect(value, kind, key)


def expect_path(value, key: str) -> str:
    """A file name: a string without a NUL byte, which no system call takes."""
    if "\0" in expect(value, str, key):
        raise invalid_config(f"{key} must not contain a NUL byte, got {json.dumps(value)}", key)
    return value
