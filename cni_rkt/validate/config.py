"""The project file `.cni-rkt.toml`: ignores and severity overrides, globally and per path.

JSON has no comments, so suppressions live beside the files instead of in them:

    [validate]
    ignore = ["CNI111"]                     # rule ids, everywhere
    fail-level = "error"                    # default for --fail-level
    severity = { CNI105 = "error" }         # override a rule's severity ("off" drops it)

    [[validate.paths]]
    glob = "legacy/*.conf"                  # fnmatch, relative to the project file's directory
    ignore = ["CNI105"]
    severity = { CNI301 = "info" }
"""

from __future__ import annotations

import os
from collections import namedtuple

from cni_rkt.validate.findings import Finding, Severity
from cni_rkt.validate.rules import RULES

CONFIG_NAME = ".cni-rkt.toml"
OFF = "off"


class ConfigError(ValueError):
    """The project file is unreadable or says something we do not understand (a usage error)."""


# Rules for files matching `glob`: rule ids to drop, and rule id -> severity name (or "off").
PathRules = namedtuple("PathRules", "glob ignore severity")


class ProjectConfig:
    __slots__ = ("root", "ignore", "severity", "paths", "fail_level", "source")

    def __init__(self, root: str = ".", source: str | None = None):
        self.root = root  # globs are relative to the project file's directory
        self.source = source
        self.ignore: frozenset[str] = frozenset()
        self.severity: dict[str, str] = {}
        self.paths: list[PathRules] = []
        self.fail_level: Severity | None = None

    def apply(self, findings: list[Finding], extra_ignores: list[str] = ()) -> list[Finding]:
        """Drop ignored findings and apply severity overrides (the most specific path wins)."""
        kept = []
        ignored = self.ignore | set(extra_ignores)
        for finding in findings:
            rules_here = [p for p in self.paths if self._matches(p.glob, finding.path)]
            if finding.rule in ignored or any(finding.rule in p.ignore for p in rules_here):
                continue
            level = self.severity.get(finding.rule)
            for path_rules in rules_here:
                level = path_rules.severity.get(finding.rule, level)
            if level == OFF:
                continue
            kept.append(finding.with_severity(Severity.parse(level)) if level else finding)
        return kept

    def _matches(self, pattern: str, path: str) -> bool:
        import fnmatch  # only when the project file has per-path rules

        relative = os.path.relpath(os.path.abspath(path), os.path.abspath(self.root))
        return fnmatch.fnmatch(path, pattern) or fnmatch.fnmatch(relative, pattern)


def find_config(start: str = ".") -> str | None:
    directory = os.path.abspath(start)
    while True:
        candidate = os.path.join(directory, CONFIG_NAME)
        if os.path.isfile(candidate):
            return candidate
        parent = os.path.dirname(directory)
        if parent == directory:
            return None
        directory = parent


def load_config(path: str) -> ProjectConfig:
    import tomllib  # only when a project file exists

    try:
        with open(path, "rb") as handle:
            data = tomllib.load(handle)
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{path}: {exc}") from exc
    section = data.get("validate", {})
    if not isinstance(section, dict):
        raise ConfigError(f"{path}: [validate] must be a table")
    config = ProjectConfig(root=os.path.dirname(os.path.abspath(path)), source=path)
    config.ignore = frozenset(_rule_list(path, section.get("ignore", []), "ignore"))
    config.severity = _severities(path, section.get("severity", {}))
    if "fail-level" in section:
        config.fail_level = _severity(path, section["fail-level"], "fail-level")
    for index, entry in enumerate(section.get("paths", [])):
        where = f"paths[{index}]"
        if not isinstance(entry, dict) or not isinstance(entry.get("glob"), str):
            raise ConfigError(f"{path}: {where} needs a string \"glob\"")
        config.paths.append(PathRules(entry["glob"], frozenset(_rule_list(path, entry.get("ignore", []), where)),
                                      _severities(path, entry.get("severity", {}))))
    unknown = set(section) - {"ignore", "severity", "fail-level", "paths"}
    if unknown:
        raise ConfigError(f"{path}: unknown key(s) in [validate]: {', '.join(sorted(unknown))}")
    return config


def _rule_list(path: str, value: object, where: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{path}: {where} must be a list of rule ids")
    for rule in value:
        check_rule_id(rule, f"{path}: {where}")
    return value


def _severities(path: str, value: object) -> dict[str, str]:
    if not isinstance(value, dict):
        raise ConfigError(f"{path}: severity must be a table of rule id = level")
    for rule, level in value.items():
        check_rule_id(rule, f"{path}: severity")
        if level != OFF:
            _severity(path, level, f"severity.{rule}")
    return dict(value)


def _severity(path: str, value: object, where: str) -> Severity:
    try:
        return Severity.parse(str(value))
    except ValueError as exc:
        raise ConfigError(f"{path}: {where}: {exc}") from None


def check_rule_id(rule: str, where: str) -> None:
    if rule not in RULES:
        raise ConfigError(f"{where}: unknown rule id {rule!r}")
