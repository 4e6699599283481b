"""Every output format, from a report built by hand and from a real run."""

from __future__ import annotations

import io
import json
import pathlib

import jsonschema
import pytest

from cni_rkt.validate.findings import Finding, Report, Severity
from cni_rkt.validate.reporters import REPORTERS, render_github, render_json, render_sarif, render_text
from cni_rkt.validate.rules import RULES
from cni_rkt.validate.schemas import SCHEMA_BASE, load_builtin_schemas

HERE = pathlib.Path(__file__).resolve().parent
SOURCE = '{\n  "name": "a",\n  "addIf": "true"\n}\n'


def sample_report() -> Report:
    report = Report(files=["net.d/10-a.conf", "net.d/20-b.conf"], sources={"net.d/10-a.conf": SOURCE})
    report.add(Finding("net.d/10-a.conf", "/addIf", 3, 3, Severity.WARNING, "CNI105",
                       'unknown key "addIf" (value "true") for bridge: the plugin ignores it'))
    report.add(Finding("net.d/20-b.conf", "", 2, 7, Severity.ERROR, "CNI100", "trailing comma, before '}'"))
    report.add(Finding("net.d/20-b.conf", "/cniVersion", 1, 1, Severity.INFO, "CNI111", "no cniVersion"))
    return report


def render(renderer, report, **kwargs) -> str:
    out = io.StringIO()
    renderer(report, out, **kwargs)
    return out.getvalue()


def test_text_is_gcc_style_with_the_source_line_and_a_caret():
    text = render(render_text, sample_report())
    lines = text.splitlines()
    assert lines[0] == ('net.d/10-a.conf:3:3: warning: unknown key "addIf" (value "true") for bridge: '
                        'the plugin ignores it [CNI105]')
    assert lines[1] == '    3 |   "addIf": "true"'
    assert lines[2] == '      |   ^~~~~~~'
    assert lines[-1] == "1 error(s), 1 warning(s), 1 info in 2 file(s)"
    assert "\033[" not in text


def test_text_escapes_what_could_forge_a_line_or_reach_the_terminal():
    """A net.d file name or key holding a newline or a terminal escape is shown escaped; the
    snippet keeps one column per character, so the caret still points at the finding."""
    path = "net.d/30-x\nFAKE: error.conf"
    source = '{"a\x1b[2J": 1, "b": }\n'
    report = Report(files=[path], sources={path: source})
    report.add(Finding(path, "", 1, 20, Severity.ERROR, "CNI100", 'unknown key "a\x1b[2J"'))
    lines = render(render_text, report).splitlines()
    assert lines[0] == 'net.d/30-x\\nFAKE: error.conf:1:20: error: unknown key "a\\x1b[2J" [CNI100]'
    assert lines[1] == '    1 | {"a\ufffd[2J": 1, "b": }'
    assert lines[2].index("^") - lines[1].index("{") == 19
    assert "\x1b" not in "\n".join(lines)


def test_text_colour_only_when_asked():
    assert "\033[1;33mwarning" in render(render_text, sample_report(), color=True)


def test_json_matches_our_report_schema():
    document = json.loads(render(render_json, sample_report()))
    schema = load_builtin_schemas()[f"{SCHEMA_BASE}validate-report.json"]
    jsonschema.Draft202012Validator(schema).validate(document)
    assert document["summary"] == {"error": 1, "warning": 1, "info": 1}
    assert document["findings"][0] == {"path": "net.d/10-a.conf", "pointer": "/addIf", "line": 3, "col": 3,
                                       "severity": "warning", "rule": "CNI105",
                                       "message": 'unknown key "addIf" (value "true") for bridge: the plugin ignores it'}


def test_json_schema_rejects_a_malformed_report():
    schema = load_builtin_schemas()[f"{SCHEMA_BASE}validate-report.json"]
    document = json.loads(render(render_json, sample_report()))
    document["findings"][0]["severity"] = "fatal"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft202012Validator(schema).validate(document)


def sarif_validator():
    schema = json.loads((HERE / "sarif-2.1.0-subset.schema.json").read_text())
    return jsonschema.Draft202012Validator(schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)


def test_sarif_is_valid_2_1_0():
    sarif = json.loads(render(render_sarif, sample_report()))
    sarif_validator().validate(sarif)
    run = sarif["runs"][0]
    rules = run["tool"]["driver"]["rules"]
    assert {r["id"] for r in rules} == set(RULES)
    for result in run["results"]:
        assert rules[result["ruleIndex"]]["id"] == result["ruleId"]
    levels = {r["ruleId"]: r["level"] for r in run["results"]}
    assert levels == {"CNI105": "warning", "CNI100": "error", "CNI111": "note"}
    location = run["results"][0]["locations"][0]["physicalLocation"]
    assert location == {"artifactLocation": {"uri": "net.d/10-a.conf"}, "region": {"startLine": 3, "startColumn": 3}}


def test_sarif_uses_file_uris_for_absolute_paths_with_escaping():
    report = Report(files=["/etc/rkt/net.d/my net.conf"])
    report.add(Finding("/etc/rkt/net.d/my net.conf", "", 1, 1, Severity.ERROR, "CNI100", "x"))
    sarif = json.loads(render(render_sarif, report))
    sarif_validator().validate(sarif)
    uri = sarif["runs"][0]["results"][0]["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
    assert uri == "file:///etc/rkt/net.d/my%20net.conf"


def test_github_annotations_escape_properties_and_data():
    report = Report(files=["a,b:c.conf"])
    report.add(Finding("a,b:c.conf", "", 4, 2, Severity.ERROR, "CNI100", "100% broken\nreally"))
    report.add(Finding("a,b:c.conf", "", 5, 1, Severity.INFO, "CNI111", "note"))
    lines = render(render_github, report).splitlines()
    assert lines == ["::error file=a%2Cb%3Ac.conf,line=4,col=2,title=CNI100::100%25 broken%0Areally [CNI100]",
                     "::notice file=a%2Cb%3Ac.conf,line=5,col=1,title=CNI111::note [CNI111]"]


def test_every_format_is_registered():
    assert set(REPORTERS) == {"text", "json", "sarif", "github"}
