"""Object keys matched the way Go's encoding/json matches struct fields.

The Go plugin decodes its config into structs, and Go matches a JSON key to a field
exactly or else ignoring case: there "rangestart", "Subnet" or "IPAM" work as
"rangeStart", "subnet" and "ipam", and of two keys naming one field the later wins.
Ours reads dicts, so the keys it knows are respelled first: the same config then gives
the same addresses, where it would otherwise be silently read without those keys.
"""

from __future__ import annotations

# A schema maps each known key to the schema of its value (None: nothing inside is
# respelled); a one-item list is the schema of every item of a list.
Schema = dict | list | None

# Beyond ASCII letters, Go 1.19's decoder folds only these two onto the ASCII letters of
# field names; Python's casefold would also take ß for "ss" or ﬆ for "st", which Go does not.
_GO_ONLY_FOLDS = str.maketrans({"\u017f": "s", "\u212a": "k"})


def _go_fold(key: str) -> bytes:
    return key.translate(_GO_ONLY_FOLDS).encode("utf-8", "surrogatepass").lower()  # bytes: ASCII only


def respell_keys(value, schema: Schema):
    """`value` with every key `schema` knows spelled as there, recursively; others kept as they are."""
    if isinstance(schema, dict) and isinstance(value, dict):
        by_fold = {_go_fold(name): name for name in schema}
        out = {}
        for key, item in value.items():
            name = key if key in schema else by_fold.get(_go_fold(key), key)
            out.pop(name, None)  # a later spelling of the same field wins, as in Go
            out[name] = respell_keys(item, schema.get(name))
        return out
    if isinstance(schema, list) and isinstance(value, list):
        return [respell_keys(item, schema[0]) for item in value]
    return value
