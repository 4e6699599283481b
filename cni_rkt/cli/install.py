"""`cni-rkt install --dir DIR`: put our plugins where a runtime looks for them."""

from __future__ import annotations

import argparse
import sys

from cni_rkt.launcher import PLUGIN_NAMES, install_launchers


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--dir",
        required=True,
        help="CNI plugin directory, e.g. /opt/cni/bin or rkt's /usr/lib/rkt/plugins/net",
    )
    parser.add_argument(
        "--python",
        default=sys.executable,
        help="absolute path of the interpreter that has cni_rkt installed (default: this one)",
    )
    parser.add_argument("--plugin", action="append", choices=PLUGIN_NAMES, help="install only these (repeatable)")


def execute(args: argparse.Namespace) -> int:
    try:
        paths = install_launchers(args.dir, args.python, tuple(args.plugin or PLUGIN_NAMES))
    except (OSError, ValueError, RuntimeError) as exc:
        print(f"cni-rkt install: {exc}", file=sys.stderr)
        return 1
    for path in paths:
        print(path)
    return 0
