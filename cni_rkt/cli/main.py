"""`cni-rkt`: the command for people and CI. One module per subcommand under cni_rkt.cli."""

from __future__ import annotations

import argparse
import importlib
import sys

# subcommand -> module with `add_arguments(parser)` and `execute(args) -> int`, and EXIT_STATUS,
# the end of its --help, unless it is made of actions whose --help each says its own.
# Modules are imported only when their subcommand runs, to keep start-up cheap.
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "install": ("cni_rkt.cli.install", "write the plugin executables into a CNI plugin directory"),
    "demo": ("cni_rkt.cli.demo", "network two pods with our plugins in a sandbox namespace, then clean up"),
    "validate": ("cni_rkt.cli.validate", "lint CNI net.d files offline (schemas, plugin rules, rkt rules)"),
    "exec": ("cni_rkt.cli.exec", "run a configured network's plugins against a netns, like cnitool"),
    "ipam": ("cni_rkt.cli.ipam", "list and reclaim host-local IPAM reservations in a data dir"),
    "worker": ("cni_rkt.cli.worker", "show or stop the pre-loaded worker the plugins start"),
}


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """Every subcommand is listed; only `only` (or all when None) gets its arguments, and so its import."""
    from cni_rkt import __version__

    parser = argparse.ArgumentParser(prog="cni-rkt", description="CNI networking for rkt-style contained networks")
    parser.add_argument("--version", action="version", version=f"cni-rkt {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name, (module_name, help_text) in SUBCOMMANDS.items():
        sub_parser = sub.add_parser(name, help=help_text, description=help_text)
        if only is None or name == only:
            module = importlib.import_module(module_name)
            sub_parser.epilog = getattr(module, "EXIT_STATUS", None)
            module.add_arguments(sub_parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    # Build only the parser of the subcommand asked for when we can tell which it is.
    parser = build_parser(only=argv[0] if argv and argv[0] in SUBCOMMANDS else None)
    args = parser.parse_args(argv)
    module = importlib.import_module(SUBCOMMANDS[args.command][0])
    try:
        code = module.execute(args)
        sys.stdout.flush()  # so that a reader gone away shows up here, not at exit
    except BrokenPipeError:
        return _reader_went_away()
    except KeyboardInterrupt:  # Ctrl-C: what was running has unwound; no traceback for the user
        print(file=sys.stderr)
        return INTERRUPTED_STATUS
    return code


# A shell's status for a writer that SIGPIPE ended (`cni-rkt ipam list | head`, with pipefail).
BROKEN_PIPE_STATUS = 128 + 13
INTERRUPTED_STATUS = 128 + 2  # as a shell reports SIGINT


def _reader_went_away() -> int:
    """Stop quietly, as Unix tools do, without a traceback or a flush that fails again at exit."""
    import os

    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
    return BROKEN_PIPE_STATUS


if __name__ == "__main__":
    sys.exit(main())
