"""Object keys matched the way Go's encoding/json matches struct fields.

The Go plugin decodes its config into structs, and Go matches a JSON key to a field
exactly or else ignoring case: there "rangestart", "Subnet" or "IPAM" work as
"rangeStart", "subnet" and "ipam", and of two keys naming one field the later wins
(a later object is decoded into the earlier one, so fields only the earlier has stay).
Ours reads dicts, so the keys it knows are respelled first: the same config then gives
the same addresses, where it would otherwise be silently read without those keys.
"""

from __future__ import annotations

# A schema maps each known key to the schema of its value (None: nothing inside is
# respelled); a one-item list is the schema of every item of a list.
Schema = dict | list | None


class Whole(dict):
    """The schema of an object Go decodes with its own UnmarshalJSON (types.Route): a repeat
    of it replaces the earlier one instead of being decoded into it."""


class Repeated(dict):
    """A JSON object that gives a key more than once: a dict of the last values, as Python's
    decoder makes it, that keeps every pair so respell_keys decodes them in order, as Go does."""

    pairs: list


def object_from_pairs(pairs: list) -> dict:
    """json.loads' object_pairs_hook: a plain dict, or a Repeated when a key repeats."""
    obj = dict(pairs)
    if len(obj) < len(pairs):
        obj = Repeated(obj)
        obj.pairs = pairs
    return obj


# Beyond ASCII letters, Go 1.19's decoder folds only these two onto the ASCII letters of
# field names; Python's casefold would also take ß for "ss" or ﬆ for "st", which Go does not.
_GO_ONLY_FOLDS = str.maketrans({"\u017f": "s", "\u212a": "k"})


def go_fold(key: str) -> bytes:
    """The key as Go's decoder compares it with a field name (equal folds: the same field)."""
    return key.translate(_GO_ONLY_FOLDS).encode("utf-8", "surrogatepass").lower()  # bytes: ASCII only


_FOLDED: dict[int, tuple[dict, dict[bytes, str]]] = {}  # id(schema) -> (schema, its names by fold)


def _folded_names(schema: dict) -> dict[bytes, str]:
    """Once per schema (they are module constants): every exec respells its config."""
    entry = _FOLDED.get(id(schema))
    if entry is None or entry[0] is not schema:  # the schema is kept in the entry, so its id is not reused
        entry = _FOLDED[id(schema)] = (schema, {go_fold(name): name for name in schema})
    return entry[1]


def respell_keys(value, schema: Schema):
    """`value` with every key `schema` knows spelled as there, recursively; others kept as they are."""
    if isinstance(schema, dict) and isinstance(value, dict):
        by_fold = _folded_names(schema)
        out = {}
        for key, item in value.pairs if isinstance(value, Repeated) else value.items():
            name = key if key in schema else by_fold.get(go_fold(key), key)
            earlier = out.pop(name, None)  # a later spelling of the same field wins, as in Go
            out[name] = _decoded_into(earlier, respell_keys(item, schema.get(name)), schema.get(name))
        return out
    if isinstance(schema, list) and isinstance(value, list):
        return [respell_keys(item, schema[0]) for item in value]
    return value


def _decoded_into(earlier, later, schema: Schema):
    """Go decodes a repeated field into the value already there: an object's fields over the
    earlier object's, and a list's items into the earlier list's items (it reuses the slice)."""
    if isinstance(schema, list) and isinstance(earlier, list) and isinstance(later, list):
        return [_decoded_into(earlier[n] if n < len(earlier) else None, item, schema[0]) for n, item in enumerate(later)]
    if isinstance(schema, Whole) or not (isinstance(schema, dict) and isinstance(earlier, dict) and isinstance(later, dict)):
        return later
    out = dict(earlier)
    for name, item in later.items():
        out[name] = _decoded_into(out.pop(name, None), item, schema.get(name))
    return out
