"""`cni-rkt install --dir DIR`: put our plugins where a runtime looks for them.

Exit status: EXIT_STATUS below (also shown by --help).
"""

from __future__ import annotations

import argparse
import os
import sys

from cni_rkt.cli.package_owner import DPKG_DIR, dpkg_owner
from cni_rkt.launcher import PLUGIN_NAMES, install_launchers
from cni_rkt.protocol.delegate import own_launcher_plugin


EXIT_STATUS = ("exit status: 0 installed; 1 the directory could not be written, or the --python interpreter "
               "cannot import cni_rkt; 2 bad arguments (--python not an absolute path to an executable)")


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
    plugins = tuple(args.plugin or PLUGIN_NAMES)
    foreign = [path for path in (os.path.join(args.dir, plugin) for plugin in plugins) if _is_other_plugin(path)]
    try:
        paths = install_launchers(args.dir, args.python, plugins)
    except ValueError as exc:  # the interpreter path itself is wrong
        print(f"cni-rkt install: --python: {exc}", file=sys.stderr)
        return 2
    except RuntimeError as exc:  # the interpreter cannot import cni_rkt and its dependencies
        print(f"cni-rkt install: --python: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"cni-rkt install: --dir {args.dir}: cannot write the plugins there: {exc.strerror or exc}"
              + (f" ({exc.filename})" if exc.filename else ""), file=sys.stderr)
        return 1
    for path in paths:
        print(path)
    for path in foreign:  # a plugin dir is often shared with the Go plugins: say what went
        print(f"cni-rkt install: {replaced_note(path)}", file=sys.stderr)
    return 0


def replaced_note(path: str, dpkg_dir: str = DPKG_DIR) -> str:
    package = dpkg_owner(path, dpkg_dir)
    if package is None:
        return f"replaced {path}, which was not a cni-rkt launcher (reinstall its package to get it back)"
    return (f"replaced {path} of the Debian package {package}, whose next upgrade puts its own back; "
            f"to keep cni-rkt's, run 'dpkg-divert --local --rename --add {path}' and install again "
            f"(to go back: rm {path} && dpkg-divert --rename --remove {path})")


def _is_other_plugin(path: str) -> bool:
    """An existing file at `path` that is not one of our launchers (of any version)."""
    return os.path.lexists(path) and own_launcher_plugin(path) is None
