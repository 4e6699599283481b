"""Plugin `type` -> schema, and schema errors -> findings with the Go plugins' view of them.

Shipped schemas live in cni_rkt/validate/schemas/ (the repo's top-level `schemas/` links there)
and run on our small evaluator; --schema-dir adds `<type>.json` files for third-party plugins,
checked with jsonschema, which is imported only when such a schema is actually used.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable

from cni_rkt.protocol.json_keys import go_fold
from cni_rkt.validate.document import Document, pointer_join
from cni_rkt.validate.schema_eval import Evaluator, SchemaError

SCHEMA_BASE = "https://cni-rkt.example/schemas/"
PLUGIN_TYPES = ("bridge", "ptp", "macvlan", "ipvlan", "loopback", "portmap", "tuning", "bandwidth",
                "firewall", "flannel")
IPAM_TYPES = ("host-local", "static", "dhcp")

# Range failures on these keys have their own rules (and the plugin's wording, see checks).
_RANGE_RULES = {"vlan": "CNI211", "mtu": "CNI212"}
_RANGE_WORDING = {"vlan": "invalid VLAN ID {} (must be between 0 and 4094)",
                  "markMasqBit": "MasqMarkBit must be between 0 and 31"}
_PROTOCOL_KEYS = ("name", "type", "plugins")
# libcni reads a list's own keys from a map, exactly; plugin keys go through Go structs, by case.
LIST_SUBJECT = "the configuration list"
# Keys of host-local written at the plugin level by mistake (rkt's GCE example has top-level routes).
_IPAM_KEYS = ("routes", "subnet", "gateway", "rangeStart", "rangeEnd", "ranges", "dataDir", "resolvConf")
# flannel puts these keys, spelled exactly so, into its delegate (name, ipam and cniVersion always; the
# others when that exact key is missing); the delegate's Go decoder keeps whichever spelling comes last.
DELEGATE_SUBJECT = "flannel's delegate"
FLANNEL_SETS = ("name", "ipam", "cniVersion", "type", "ipMasq", "mtu", "isGateway")
_GO_TYPES = {"integer": "int", "boolean": "bool", "string": "string", "object": "map", "array": "slice",
             "number": "float64"}


def load_builtin_schemas() -> dict[str, dict]:
    """$id -> schema for every schema shipped in the package."""
    directory = os.path.join(os.path.dirname(os.path.abspath(__file__)), "schemas")
    if os.path.isdir(directory):  # an ordinary install: skip importlib.resources' import cost (~20 ms)
        entries = [(name, os.path.join(directory, name)) for name in os.listdir(directory)]
        texts = [_read(path) for name, path in entries if name.endswith(".json")]
    else:  # zipped or otherwise packaged: ask the import system
        from importlib import resources

        folder = resources.files(__package__).joinpath("schemas")
        texts = [entry.read_text() for entry in folder.iterdir() if entry.name.endswith(".json")]
    registry = {}
    for text in texts:
        schema = json.loads(text)
        registry[schema["$id"]] = schema
    return registry


def _read(path: str) -> str:
    with open(path, encoding="utf-8") as handle:
        return handle.read()


def _load_schema_file(path: str) -> dict:
    try:
        schema = json.loads(_read(path))
    except (OSError, ValueError) as exc:
        raise SchemaLoadError(f"{path}: {exc}") from exc
    if not isinstance(schema, (dict, bool)):
        raise SchemaLoadError(f"{path}: a schema must be a JSON object")
    return schema


def json_type(value: object) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    return {dict: "object", list: "array", str: "string", type(None): "null"}[type(value)]


class SchemaLoadError(ValueError):
    """A --schema-dir schema that cannot be read, is not JSON, or is not a valid JSON Schema."""


class SchemaSet:
    """Every schema available to one run; validators are built once and reused for every file."""

    def __init__(self, extra_dirs: Iterable[str] = ()):
        self.registry = load_builtin_schemas()
        self.evaluator = Evaluator(self.registry)  # a list's own keys: libcni reads them from a map, exactly
        self.go_evaluator = Evaluator(self.registry, go_structs=True)  # plugins decode into Go structs
        self.extra: dict[str, tuple[str, dict]] = {}  # type -> (path, schema) of a third-party schema
        for directory in extra_dirs:
            try:
                names = sorted(os.listdir(directory))
            except OSError as exc:
                raise SchemaLoadError(f"--schema-dir {directory}: {exc.strerror}") from exc
            for name in names:
                if name.endswith(".json"):
                    path = os.path.join(directory, name)
                    self.extra[name[: -len(".json")]] = (path, _load_schema_file(path))
        self._extra_validators: dict[str, object] = {}

    def knows(self, plugin_type: str) -> bool:
        return plugin_type in PLUGIN_TYPES or plugin_type in self.extra

    def knows_ipam(self, ipam_type: str) -> bool:
        return ipam_type in IPAM_TYPES or ipam_type in self.extra

    def errors(self, instance: object, name: str) -> list[SchemaError]:
        if name in self.extra:
            return self._extra_errors(instance, name)
        evaluator = self.evaluator if name == "conflist" else self.go_evaluator
        return list(evaluator.iter_errors(instance, f"{SCHEMA_BASE}{name}.json"))

    def _extra_errors(self, instance: object, name: str) -> list[SchemaError]:
        validator = self._extra_validators.get(name)
        if validator is None:
            import jsonschema  # only third-party schemas pay for it

            path, schema = self.extra[name]
            cls = jsonschema.validators.validator_for(schema)
            try:
                cls.check_schema(schema)
            except jsonschema.SchemaError as exc:
                raise SchemaLoadError(f"{path}: not a valid JSON Schema: {exc.message}") from exc
            validator = cls(schema)
            self._extra_validators[name] = validator
        out = []
        for error in validator.iter_errors(instance):
            path = tuple(error.absolute_path)
            if error.validator == "required":
                missing = [k for k in error.validator_value if k not in error.instance]
                path += tuple(missing[:1])
            out.append(SchemaError(path, str(error.validator), error.schema, error.instance))
        return out


def check_against_schema(doc: Document, schemas: SchemaSet, pointer: str, instance: object, name: str,
                         what: str, skip: Callable[[tuple], bool] | None = None) -> None:
    """Validate `instance` (at `pointer` in doc) against schema `name`; `what` names it in messages.

    `skip(path)` drops errors checked elsewhere (a list's plugins are checked one by one).
    """
    for error in schemas.errors(instance, name):
        if skip and skip(error.path):
            continue
        report_schema_error(doc, pointer, error, _subject(instance, error.path, what))


def _subject(instance: object, path: tuple, what: str) -> str:
    """Name the object an error is about: the plugin, its IPAM, or flannel's delegate."""
    if path[:1] == ("ipam",) and isinstance(instance, dict) and isinstance(instance.get("ipam"), dict):
        return f"{instance['ipam'].get('type', 'the')} IPAM"
    if path[:1] == ("delegate",) and isinstance(instance, dict) and isinstance(instance.get("delegate"), dict):
        return f"{DELEGATE_SUBJECT} ({instance['delegate'].get('type', 'bridge')})"
    return what


def report_schema_error(doc: Document, base: str, error: SchemaError, what: str) -> None:
    pointer = pointer_join(base, *error.path)
    key = str(error.path[-1]) if error.path else what
    if error.keyword == "additionalProperties":
        report_unknown_keys(doc, pointer, error.instance, error.schema, what)
    elif error.keyword == "type":
        expected = error.schema["type"]
        expected = " or ".join(expected) if isinstance(expected, list) else expected
        got = json_type(error.instance)
        go = _GO_TYPES.get(expected, expected)
        shown = json.dumps(error.instance)
        if error.instance is not None:  # "null" says it all
            shown = f"{got} {shown}" if len(shown) <= 40 else _article(got) + " " + got
        doc.emit("CNI106", pointer,
                 f"\"{key}\" is {shown}, {what} expects {_article(expected)} {expected}"
                 f" (the plugin fails with: cannot unmarshal {got} into ... of type {go})")
    elif error.keyword in ("enum", "const"):
        allowed = error.schema.get("enum", [error.schema.get("const")])
        doc.emit("CNI107", pointer, f"\"{key}\" is {json.dumps(error.instance)}; {what} accepts "
                 + ", ".join(json.dumps(a) for a in allowed))
    elif error.keyword in ("minimum", "maximum"):
        low, high = error.schema.get("minimum"), error.schema.get("maximum")
        bounds = f"{low}-{high}" if low is not None and high is not None else f"{error.keyword} {low if high is None else high}"
        rule = _RANGE_RULES.get(key, "CNI107")
        wording = _RANGE_WORDING.get(key)
        said = f"; the plugin fails with: {wording.format(error.instance)}" if wording else ""
        doc.emit(rule, pointer, f"\"{key}\" is {error.instance}, outside {bounds} ({what}){said}")
    elif error.keyword == "required":
        if len(error.path) == 1 and key in _PROTOCOL_KEYS:
            return  # the protocol checks report a missing name / type / plugins with the runtime's words
        doc.emit("CNI107", pointer_join(base, *error.path[:-1]), f"{what}: missing required key \"{key}\"")
    elif error.keyword == "minItems":
        rule = "CNI114" if key == "plugins" else "CNI107"
        doc.emit(rule, pointer, f"\"{key}\" needs at least {error.schema['minItems']} item(s)")
    else:
        doc.emit("CNI107", pointer, f"\"{key}\" is not allowed by the {what} schema ({error.keyword})")


def report_unknown_keys(doc: Document, pointer: str, instance: dict, schema: dict, what: str) -> None:
    import difflib  # only when there is an unknown key to suggest for

    known = list(schema.get("properties", {}))
    by_fold = {go_fold(k): k for k in known}
    by_lower = {k.lower(): k for k in known}  # for suggestions only
    for key in instance:
        if key in known:
            continue
        child = pointer_join(pointer, key)
        if go_fold(key) in by_fold and what != LIST_SUBJECT:
            real = by_fold[go_fold(key)]
            if what.startswith(DELEGATE_SUBJECT) and real in FLANNEL_SETS and real > key:
                # flannel's map is marshalled with sorted keys, so its "ipMasq" lands after "IPMasq".
                doc.emit("CNI102", child, f"key \"{key}\" is ignored: flannel adds its own \"{real}\" to the "
                         f"delegate, which the plugin reads last; write \"{real}\"", at_key=True)
                continue
            doc.emit("CNI102", child, f"key \"{key}\" is read as \"{real}\" by the plugins, Go's and ours (keys match "
                     f"case-insensitively); write \"{real}\"", at_key=True)
            continue
        value = json.dumps(instance[key])
        shown = f" (value {value})" if len(value) <= 30 else ""
        guess = [by_lower[g] for g in difflib.get_close_matches(key.lower(), list(by_lower), n=1, cutoff=0.6)]
        hint = f"; did you mean \"{guess[0]}\"?" if guess else ""
        if not guess and key in _IPAM_KEYS and "ipam" in known:
            hint = "; it belongs inside \"ipam\""
        doc.emit("CNI105", child, f"unknown key \"{key}\"{shown} for {what}: the plugin ignores it{hint}",
                 at_key=True)


def _article(word: str) -> str:
    return "an" if word[:1] in "aeiou" else "a"
