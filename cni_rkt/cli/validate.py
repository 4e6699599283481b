"""`cni-rkt validate`: lint CNI net.d files offline, for people, CI and pre-commit.

Exit codes: 0 clean, 1 findings at or above --fail-level, 2 usage error, 3 an input could not be read
(or the validator itself failed).
"""

from __future__ import annotations

import argparse
import os
import sys

EXIT_CLEAN, EXIT_FINDINGS, EXIT_USAGE, EXIT_UNREADABLE = 0, 1, 2, 3
FORMATS = ("text", "json", "sarif", "github")
EXIT_STATUS = ("exit status: 0 clean; 1 findings at or above --fail-level; 2 usage error; "
               "3 an input could not be read (or the validator itself failed)")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("paths", nargs="*", metavar="PATH",
                        help="files, directories (checked as the runtime's loader reads them), globs, or - for stdin; "
                             ".yaml/.yml files are Kubernetes pod manifests")
    parser.add_argument("--format", choices=FORMATS, default="text", help="output format (default: text)")
    parser.add_argument("--color", choices=("auto", "always", "never"), default="auto",
                        help="colour the text format (auto: only on a terminal)")
    parser.add_argument("--fail-level", choices=("error", "warning", "info"),
                        help="lowest severity that makes the exit code 1 (default: error)")
    parser.add_argument("--strict", action="store_true", help="warnings fail too (same as --fail-level warning)")
    parser.add_argument("--ignore", action="append", default=[], metavar="RULE",
                        help="drop findings of this rule id (repeatable, or comma-separated)")
    parser.add_argument("--config", metavar="FILE",
                        help="project file (default: the nearest .cni-rkt.toml upwards from the current directory)")
    parser.add_argument("--no-config", action="store_true", help="do not read a project file")
    parser.add_argument("--runtime", choices=("rkt", "libcni"),
                        help="the loader to model (default: rkt for paths under rkt/net.d, libcni for other directories)")
    parser.add_argument("--kvm", action="store_true",
                        help="pods use rkt's KVM stage1: plugin types it cannot drive are errors")
    parser.add_argument("--schema-dir", action="append", default=[], metavar="DIR",
                        help="extra schemas, one <type>.json per third-party plugin type (repeatable)")
    parser.add_argument("--cni-path", metavar="DIRS",
                        help="colon-separated plugin directories: report plugin types with no executable there")
    parser.add_argument("--subnet-env", metavar="FILE", help="flanneld's subnet.env to check flannel configs against")
    parser.add_argument("--stdin-filename", default="<stdin>", metavar="NAME",
                        help="name to report for input read from stdin (its extension selects conf or conflist)")
    parser.add_argument("--list-rules", action="store_true", help="print every rule id with its severity and exit")


def execute(args: argparse.Namespace) -> int:
    from cni_rkt.validate.config import ConfigError

    if args.list_rules:
        return print_rules()
    if not args.paths:
        return usage_error("no input: give files, directories, globs or - for stdin")
    try:
        config, ignores = load_settings(args)
    except ConfigError as exc:
        return usage_error(str(exc))
    options = build_options(args, config, ignores)
    if options is None:
        return EXIT_UNREADABLE
    return run(args, options, fail_level(args, config))


def print_rules() -> int:
    from cni_rkt.validate.rules import RULES

    for rule in RULES.values():
        print(f"{rule.id}  {str(rule.severity):<7}  {rule.summary}")
    return EXIT_CLEAN


def load_settings(args: argparse.Namespace):
    """(project config, rule ids to ignore); ConfigError for anything a user must fix first."""
    from cni_rkt.validate.config import ConfigError, ProjectConfig, check_rule_id, find_config, load_config

    ignores = [rule.strip() for item in args.ignore for rule in item.split(",") if rule.strip()]
    for rule in ignores:
        check_rule_id(rule, "--ignore")
    for directory in args.schema_dir:
        if not os.path.isdir(directory):
            raise ConfigError(f"--schema-dir {directory}: not a directory")
    config_path = None if args.no_config else (args.config or find_config())
    return (load_config(config_path) if config_path else ProjectConfig()), ignores


def fail_level(args: argparse.Namespace, config):
    """--strict, then --fail-level, then the project file, then errors only."""
    from cni_rkt.validate.findings import Severity

    if args.strict:
        return Severity.WARNING
    if args.fail_level:
        return Severity.parse(args.fail_level)
    return config.fail_level or Severity.ERROR


def run(args: argparse.Namespace, options, level) -> int:
    from cni_rkt.validate.engine import validate
    from cni_rkt.validate.reporters import REPORTERS
    from cni_rkt.validate.schemas import SchemaLoadError

    try:
        report = validate(args.paths, options)
    except SchemaLoadError as exc:
        return usage_error(str(exc))
    except Exception as exc:  # a bug in a check: say so plainly, never pass it off as findings (exit 1)
        import traceback

        traceback.print_exc()
        print(f"cni-rkt validate: internal error: {exc!r}", file=sys.stderr)
        return EXIT_UNREADABLE
    color = args.color == "always" or (args.color == "auto" and sys.stdout.isatty() and "NO_COLOR" not in os.environ)
    REPORTERS[args.format](report, sys.stdout, color=color)
    for problem in report.unreadable:
        print(f"cni-rkt validate: cannot read {problem}", file=sys.stderr)
    if report.unreadable:
        return EXIT_UNREADABLE
    return EXIT_FINDINGS if report.count(level) else EXIT_CLEAN


def build_options(args: argparse.Namespace, config, ignores: list[str]):
    """The engine's Options, or None when stdin was asked for and cannot be read."""
    from cni_rkt.validate.engine import Options

    stdin_text = None
    if "-" in args.paths:
        try:
            stdin_text = sys.stdin.buffer.read().decode("utf-8", errors="replace")
        except OSError as exc:
            print(f"cni-rkt validate: cannot read stdin: {exc}", file=sys.stderr)
            return None
    return Options(runtime=args.runtime, kvm=args.kvm, schema_dirs=args.schema_dir,
                   cni_path=args.cni_path.split(":") if args.cni_path is not None else None,
                   subnet_env=args.subnet_env, ignore=ignores, config=config,
                   stdin_text=stdin_text, stdin_name=args.stdin_filename)


def usage_error(message: str) -> int:
    print(f"cni-rkt validate: {message}", file=sys.stderr)
    return EXIT_USAGE
