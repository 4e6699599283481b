"""Hand-written cases: positive/ files must give no finding at all; each negative/ file pins the
exact (rule, JSON pointer) pairs it must give in its `<file>.expected.json` sidecar."""

from __future__ import annotations

import json
import pathlib

import pytest

from cni_rkt.validate.config import ProjectConfig
from cni_rkt.validate.engine import Options, validate

HERE = pathlib.Path(__file__).resolve().parent
POSITIVE = sorted((HERE / "positive").iterdir())
NEGATIVE = sorted(p for p in (HERE / "negative").iterdir() if not p.name.endswith(".expected.json"))


@pytest.mark.parametrize("path", POSITIVE, ids=lambda p: p.name)
def test_positive_case_is_clean(path):
    report = validate([str(path)], Options(config=ProjectConfig()))
    assert report.findings == []


@pytest.mark.parametrize("path", NEGATIVE, ids=lambda p: p.name)
def test_negative_case_gives_exactly_its_expected_findings(path):
    expected = {tuple(pair) for pair in json.loads(path.with_name(path.name + ".expected.json").read_text())}
    report = validate([str(path)], Options(config=ProjectConfig()))
    assert {(f.rule, f.pointer) for f in report.findings} == expected


def test_every_negative_case_has_a_sidecar():
    sidecars = {p.name for p in (HERE / "negative").iterdir() if p.name.endswith(".expected.json")}
    assert sidecars == {p.name + ".expected.json" for p in NEGATIVE}
