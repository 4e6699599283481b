"""The .cni-rkt.toml project file: ignores and severity overrides, globally and per path."""

from __future__ import annotations

import pytest

from cni_rkt.validate.config import ConfigError, find_config, load_config
from cni_rkt.validate.findings import Finding, Severity


def finding(path: str, rule: str, severity=Severity.WARNING) -> Finding:
    return Finding(path, "", 1, 1, severity, rule, "m")


def write(tmp_path, text: str) -> str:
    path = tmp_path / ".cni-rkt.toml"
    path.write_text(text)
    return str(path)


def test_global_and_per_path_ignores_and_severities(tmp_path):
    config = load_config(write(tmp_path, """
[validate]
ignore = ["CNI111"]
fail-level = "warning"
severity = { CNI105 = "error", CNI118 = "off" }

[[validate.paths]]
glob = "legacy/*.conf"
ignore = ["CNI105"]
severity = { CNI301 = "info" }
"""))
    findings = [finding(str(tmp_path / "net.d/a.conf"), "CNI111"), finding(str(tmp_path / "net.d/a.conf"), "CNI105"),
                finding(str(tmp_path / "legacy/b.conf"), "CNI105"), finding(str(tmp_path / "legacy/b.conf"), "CNI301"),
                finding(str(tmp_path / "net.d/a.conf"), "CNI118"), finding(str(tmp_path / "net.d/a.conf"), "CNI301")]
    kept = {(f.path.split("/")[-2], f.rule, f.severity) for f in config.apply(findings)}
    assert kept == {("net.d", "CNI105", Severity.ERROR), ("legacy", "CNI301", Severity.INFO),
                    ("net.d", "CNI301", Severity.WARNING)}
    assert config.fail_level == Severity.WARNING


def test_command_line_ignores_add_to_the_file(tmp_path):
    config = load_config(write(tmp_path, "[validate]\n"))
    assert config.apply([finding("a.conf", "CNI105")], ["CNI105"]) == []


@pytest.mark.parametrize("text, words", [
    ('[validate]\nignore = ["NOPE1"]\n', "unknown rule id 'NOPE1'"),
    ('[validate]\nseverity = { CNI105 = "fatal" }\n', "unknown severity 'fatal'"),
    ('[validate]\nignores = []\n', "unknown key(s) in [validate]: ignores"),
    ('[validate\n', "Expected"),
    ('[[validate.paths]]\nignore = ["CNI105"]\n', 'needs a string "glob"'),
])
def test_mistakes_in_the_file_are_usage_errors(tmp_path, text, words):
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, text))
    assert words in str(caught.value)


def test_the_file_is_found_upwards(tmp_path):
    path = write(tmp_path, "[validate]\n")
    (tmp_path / "a" / "b").mkdir(parents=True)
    assert find_config(str(tmp_path / "a" / "b")) == path
