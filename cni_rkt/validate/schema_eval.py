"""A small JSON Schema (draft 2020-12) evaluator for the keywords our shipped schemas use.

Why not jsonschema for everything: importing it costs ~170 ms on a CI runner, more than the
whole budget of a one-file run. Our own schemas stick to the keywords below (a unit test holds
them to it and compares the errors with jsonschema's on the corpus); schemas from --schema-dir
may use anything, so those go to jsonschema (imported only then, see schemas.py).
"""

from __future__ import annotations

import re
from collections import namedtuple
from collections.abc import Iterator

from cni_rkt.protocol.json_keys import go_fold

APPLICATORS = {"$ref", "allOf", "if", "then", "else", "not", "properties", "additionalProperties", "items"}
ASSERTIONS = {"type", "enum", "const", "required", "minimum", "maximum", "minItems", "pattern"}
ANNOTATIONS = {"$schema", "$id", "$defs", "title", "description", "default", "examples", "$comment"}
SUPPORTED_KEYWORDS = APPLICATORS | ASSERTIONS | ANNOTATIONS

_TYPE_CHECKS = {
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str),
    "boolean": lambda v: isinstance(v, bool),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "null": lambda v: v is None,
}


# One failed assertion: path (keys and indexes from the document root), the keyword, the schema
# object holding it, and the instance it rejected.
SchemaError = namedtuple("SchemaError", "path keyword schema instance")


def unsupported_keywords(schema: object) -> set[str]:
    """Keywords anywhere in `schema` this evaluator does not implement."""
    found: set[str] = set()
    if isinstance(schema, dict):
        for key, value in schema.items():
            if key not in SUPPORTED_KEYWORDS:
                found.add(key)
            if key in ("properties", "$defs"):
                for sub in value.values():
                    found |= unsupported_keywords(sub)
            elif key not in ("enum", "const", "required", "examples", "default"):
                found |= unsupported_keywords(value)
    elif isinstance(schema, list):
        for item in schema:
            found |= unsupported_keywords(item)
    return found


class Evaluator:
    """Evaluates instances against schemas registered by `$id` (relative `$ref`s resolve by file name).

    go_structs=True reads objects as Go's encoding/json decodes them into structs and maps: a key
    that is not a property but matches one case-insensitively is still evaluated against that
    property's schema (and still reported by additionalProperties, so the caller can name the
    spelling), and a null value is not checked at all - Go leaves the field unset, without error.
    """

    def __init__(self, registry: dict[str, dict], go_structs: bool = False):
        self.registry = registry  # $id -> schema document
        self.go_structs = go_structs

    def iter_errors(self, instance: object, schema_id: str) -> Iterator[SchemaError]:
        root = self.registry[schema_id]
        yield from self._evaluate(instance, root, root, ())

    def is_valid(self, instance: object, schema: dict, root: dict) -> bool:
        return next(iter(self._evaluate(instance, schema, root, ())), None) is None

    # -- references -----------------------------------------------------------------------
    def _resolve(self, ref: str, root: dict) -> tuple[dict, dict]:
        document, _, fragment = ref.partition("#")
        if document:
            base = root["$id"].rsplit("/", 1)[0]
            root = self.registry[f"{base}/{document}"]
        target = root
        for token in filter(None, fragment.split("/")):
            target = target[token.replace("~1", "/").replace("~0", "~")]
        return target, root

    # -- evaluation -----------------------------------------------------------------------
    def _evaluate(self, instance: object, schema: dict, root: dict, path: tuple) -> Iterator[SchemaError]:
        if "$ref" in schema:
            target, target_root = self._resolve(schema["$ref"], root)
            yield from self._evaluate(instance, target, target_root, path)
        for sub in schema.get("allOf", ()):
            yield from self._evaluate(instance, sub, root, path)
        if "if" in schema:
            branch = "then" if self.is_valid(instance, schema["if"], root) else "else"
            if branch in schema:
                yield from self._evaluate(instance, schema[branch], root, path)
        if "not" in schema and self.is_valid(instance, schema["not"], root):
            yield SchemaError(path, "not", schema, instance)
        yield from self._assertions(instance, schema, path)
        if isinstance(instance, dict):
            yield from self._object(instance, schema, root, path)
        elif isinstance(instance, list) and "items" in schema:
            for index, item in enumerate(instance):
                yield from self._evaluate(item, schema["items"], root, path + (index,))

    def _object(self, instance: dict, schema: dict, root: dict, path: tuple) -> Iterator[SchemaError]:
        properties = schema.get("properties", {})
        decoded = {k: v for k, v in instance.items() if v is not None} if self.go_structs else instance
        for key, sub in properties.items():
            if key in decoded:
                yield from self._evaluate(instance[key], sub, root, path + (key,))
        extra = schema.get("additionalProperties", True)
        if extra is True:
            return
        unknown = [key for key in instance if key not in properties]
        if self.go_structs and unknown:
            by_fold = {go_fold(name): name for name in properties}
            for key in unknown:
                if key in decoded and go_fold(key) in by_fold:
                    yield from self._evaluate(instance[key], properties[by_fold[go_fold(key)]], root, path + (key,))
        if extra is False:
            if unknown:
                yield SchemaError(path, "additionalProperties", schema, instance)
            return
        for key in unknown:
            if key in decoded:
                yield from self._evaluate(instance[key], extra, root, path + (key,))

    def _assertions(self, instance: object, schema: dict, path: tuple) -> Iterator[SchemaError]:
        if "type" in schema:
            types = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
            if not any(_TYPE_CHECKS[t](instance) for t in types):
                yield SchemaError(path, "type", schema, instance)
                return  # the other assertions would only repeat the same problem
        if "enum" in schema and not any(_same(instance, v) for v in schema["enum"]):
            yield SchemaError(path, "enum", schema, instance)
        if "const" in schema and not _same(instance, schema["const"]):
            yield SchemaError(path, "const", schema, instance)
        if isinstance(instance, dict):
            for key in schema.get("required", ()):
                if key not in instance:
                    yield SchemaError(path + (key,), "required", schema, instance)
        if _TYPE_CHECKS["number"](instance):
            if "minimum" in schema and instance < schema["minimum"]:
                yield SchemaError(path, "minimum", schema, instance)
            if "maximum" in schema and instance > schema["maximum"]:
                yield SchemaError(path, "maximum", schema, instance)
        if isinstance(instance, list) and len(instance) < schema.get("minItems", 0):
            yield SchemaError(path, "minItems", schema, instance)
        if isinstance(instance, str) and "pattern" in schema and not re.search(schema["pattern"], instance):
            yield SchemaError(path, "pattern", schema, instance)


def _same(a: object, b: object) -> bool:
    """JSON equality: true is not 1."""
    return type(a) is type(b) and a == b if isinstance(a, bool) or isinstance(b, bool) else a == b
