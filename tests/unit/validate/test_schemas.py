"""The shipped schemas: draft 2020-12 with an $id, in sync with their generator, and our small
evaluator agreeing with jsonschema on every corpus document."""

from __future__ import annotations

import importlib.util
import json
import pathlib

import jsonschema
import pytest
from referencing import Registry, Resource

from cni_rkt.validate.jsonpos import JSONSyntaxError, parse_json
from cni_rkt.validate.schema_eval import Evaluator, unsupported_keywords
from cni_rkt.validate.schemas import SCHEMA_BASE, load_builtin_schemas

REPO = pathlib.Path(__file__).resolve().parents[3]
CORPUS = REPO / "tests" / "corpus" / "cni-configs"
REQUIRED_TYPES = ("bridge", "host-local", "flannel", "ptp", "macvlan", "ipvlan", "loopback", "portmap", "tuning",
                  "bandwidth", "firewall", "static", "dhcp")


@pytest.fixture(scope="module")
def registry():
    return load_builtin_schemas()


def test_every_required_schema_ships_with_an_id(registry):
    names = {schema_id.rsplit("/", 1)[1] for schema_id in registry}
    assert {f"{t}.json" for t in REQUIRED_TYPES} | {"network-config.json", "conflist.json"} <= names
    for schema_id, schema in registry.items():
        assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
        assert schema["$id"] == schema_id and schema_id.startswith(SCHEMA_BASE)
        jsonschema.Draft202012Validator.check_schema(schema)


def test_top_level_schemas_directory_is_the_package_directory():
    top = REPO / "schemas"
    assert top.is_dir()
    assert sorted(p.name for p in top.glob("*.json")) == sorted(
        p.name for p in (REPO / "cni_rkt" / "validate" / "schemas").glob("*.json"))


def test_schema_files_match_their_generator():
    spec = importlib.util.spec_from_file_location("generate_schemas", REPO / "scripts" / "generate_schemas.py")
    generator = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(generator)
    for name, schema in generator.build().items():
        path = REPO / "cni_rkt" / "validate" / "schemas" / f"{name}.json"
        assert path.read_text() == generator.render(schema), f"{path.name} is stale: run scripts/generate_schemas.py"


def test_shipped_schemas_use_only_keywords_the_evaluator_implements(registry):
    for schema in registry.values():
        assert unsupported_keywords(schema) == set()


def corpus_documents():
    for path in sorted(CORPUS.iterdir()):
        try:
            value = parse_json(path.read_text()).value
        except JSONSyntaxError:
            continue
        if isinstance(value, dict):
            yield path.name, value


def normalise_ours(error) -> tuple:
    path = error.path[:-1] if error.keyword == "required" else error.path
    return tuple(path), error.keyword


def normalise_theirs(error) -> tuple:
    return tuple(error.absolute_path), error.validator


@pytest.mark.parametrize("schema_name", ["network-config", "conflist", "plugin"])
def test_evaluator_agrees_with_jsonschema_on_the_corpus(registry, schema_name):
    resources = Registry().with_resources((i, Resource.from_contents(s)) for i, s in registry.items())
    theirs_validator = jsonschema.Draft202012Validator(registry[f"{SCHEMA_BASE}{schema_name}.json"],
                                                       registry=resources)
    ours = Evaluator(registry)
    compared = 0
    for name, document in corpus_documents():
        expected = {normalise_theirs(e) for e in theirs_validator.iter_errors(document)}
        got = {normalise_ours(e) for e in ours.iter_errors(document, f"{SCHEMA_BASE}{schema_name}.json")}
        assert got == expected, name
        compared += 1
    assert compared > 60


def test_evaluator_catches_what_jsonschema_catches_on_crafted_errors(registry):
    resources = Registry().with_resources((i, Resource.from_contents(s)) for i, s in registry.items())
    schema_id = f"{SCHEMA_BASE}network-config.json"
    theirs = jsonschema.Draft202012Validator(registry[schema_id], registry=resources)
    bad = {"name": "n", "type": "bridge", "mtu": "1500", "vlan": 9000, "hairpinMode": "yes", "extra": 1,
           "ipam": {"type": "host-local", "ranges": [[{"rangeStart": "10.0.0.1"}]], "routes": [{"gw": 1}]},
           "dns": {"nameservers": "8.8.8.8"}}
    expected = {normalise_theirs(e) for e in theirs.iter_errors(bad)}
    got = {normalise_ours(e) for e in Evaluator(registry).iter_errors(bad, schema_id)}
    assert got == expected and len(expected) >= 7


def test_schemas_work_from_an_editor_for_the_examples(registry):
    """The editor path: plain jsonschema with the network-config schema accepts the guide's bridge file
    except for the unknown key, as our linter says."""
    resources = Registry().with_resources((i, Resource.from_contents(s)) for i, s in registry.items())
    validator = jsonschema.Draft202012Validator(registry[f"{SCHEMA_BASE}network-config.json"], registry=resources)
    example = json.loads((REPO / "examples" / "rkt" / "net.d" / "10-rkt.kubernetes.io.conf").read_text())
    [error] = list(validator.iter_errors(example))
    assert error.validator == "additionalProperties" and "addIf" in error.message


def test_schemas_load_from_a_zipped_install(tmp_path, registry):
    """Without a schemas directory on disk (a zipapp, a zipped wheel) the import system reads them."""
    import subprocess
    import sys
    import zipfile

    archive = tmp_path / "cni_rkt.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        for path in (REPO / "cni_rkt").rglob("*"):
            if path.is_file() and "__pycache__" not in path.parts:
                zipped.write(path, path.relative_to(REPO).as_posix())
    probe = ("import sys, json; sys.path.insert(0, sys.argv[1]); from cni_rkt.validate import schemas; "
             "assert schemas.__file__.startswith(sys.argv[1]), schemas.__file__; "
             "print(json.dumps(sorted(schemas.load_builtin_schemas())))")
    proc = subprocess.run([sys.executable, "-I", "-c", probe, str(archive)], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == sorted(registry)
