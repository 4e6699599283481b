"""The single entry point of every plugin: run(plugin, environ, stdin) -> (stdout, exit code).

Nothing else in cni_rkt reads os.environ or stdin, prints to stdout or exits. Tests call
`run` in-process, the launchers in bin/ call `main`, a pre-loaded worker may call it too.
This is also the only catch-all: a CNIError becomes the spec's error JSON, anything else
becomes code 999 with a one-line message and the traceback on stderr only.
"""

from __future__ import annotations

import importlib
import json
import sys
import traceback
from collections.abc import Mapping

from cni_rkt import __version__
from cni_rkt.errors import CNIError, ErrorCode
from cni_rkt.protocol import spec
from cni_rkt.protocol.invocation import check_environment, parse_invocation, read_command

# Plugin name (the executable a runtime execs) -> module holding its verbs.
# Imported lazily: VERSION and the about text need none of them.
PLUGIN_MODULES: dict[str, str] = {
    "bridge": "cni_rkt.plugins.bridge",
    "host-local": "cni_rkt.plugins.host_local",
    "flannel": "cni_rkt.plugins.flannel",
}

_VERB_FUNCTIONS = {"ADD": "add", "DEL": "delete", "CHECK": "check", "STATUS": "status", "GC": "gc"}


def about_text(plugin: str) -> str:
    versions = ", ".join(spec.SUPPORTED_VERSIONS)
    return f"CNI {plugin} plugin cni-rkt v{__version__}\nCNI protocol versions supported: {versions}\n"


def version_reply() -> bytes:
    """VERSION ignores stdin and every other variable (podman probes with dummies)."""
    reply = {"cniVersion": spec.CURRENT_VERSION, "supportedVersions": list(spec.SUPPORTED_VERSIONS)}
    return json.dumps(reply, separators=(",", ":")).encode() + b"\n"


def error_reply(error: CNIError, cni_version: str = "") -> bytes:
    from cni_rkt.protocol.result import render_json

    return render_json(error.to_dict(cni_version))


def config_version_hint(stdin: bytes) -> str:
    """The config's cniVersion if it is one we render errors in, else ""."""
    try:
        hint = json.loads(stdin).get("cniVersion", "") if stdin else ""
    except (ValueError, AttributeError, UnicodeDecodeError, RecursionError):
        return ""  # parse_invocation reports what is wrong with it
    return hint if hint in spec.SUPPORTED_VERSIONS else ""


def log(message: str) -> None:
    sys.stderr.write(message.rstrip("\n") + "\n")
    sys.stderr.flush()


def _dispatch(plugin: str, environ: Mapping[str, str], stdin: bytes) -> bytes:
    invocation = parse_invocation(environ, stdin)
    module = importlib.import_module(PLUGIN_MODULES[plugin])
    verb = getattr(module, _VERB_FUNCTIONS[invocation.command])
    result = verb(invocation)
    if invocation.command != "ADD":
        return b""
    from cni_rkt.protocol.result import render_result

    return render_result(result, invocation.cni_version)


def run(plugin: str, environ: Mapping[str, str], stdin: bytes) -> tuple[bytes, int]:
    """Run one CNI invocation of `plugin`; return what to print on stdout and the exit code."""
    if plugin not in PLUGIN_MODULES:
        raise ValueError(f"unknown plugin {plugin!r}")
    version_hint = ""
    try:
        command = read_command(environ)
        if command == "VERSION":
            return version_reply(), 0
        if not command:
            try:
                check_environment(environ)
            except CNIError:
                sys.stderr.write(about_text(plugin))
                return b"", 0
        version_hint = config_version_hint(stdin)
        return _dispatch(plugin, environ, stdin), 0
    except CNIError as error:
        return error_reply(error, version_hint), 1
    except Exception as exc:  # noqa: BLE001 - the one catch-all: never a traceback on stdout
        log(f"{plugin}: unexpected error\n{traceback.format_exc()}")
        error = CNIError(ErrorCode.INTERNAL, f"internal error in {plugin} plugin: {type(exc).__name__}: {exc}")
        return error_reply(error, version_hint), 1


def stdin_error_reply(exc: OSError) -> tuple[bytes, int]:
    """Code 5: the spec's I/O failure, when stdin itself cannot be read."""
    return error_reply(CNIError(ErrorCode.IO_FAILURE, f"error reading from stdin: {exc.strerror or exc}")), 1


def main(plugin: str) -> None:
    """Process entry point of the development launchers in bin/: real stdin/stdout/environ, then exit."""
    import os

    from cni_rkt.protocol.stdio import read_stdin

    try:
        stdin = read_stdin(os.environ.get("CNI_COMMAND", ""))
    except OSError as exc:
        out, code = stdin_error_reply(exc)
    else:
        out, code = run(plugin, os.environ, stdin)
    sys.stdout.buffer.write(out)
    sys.stdout.buffer.flush()
    sys.exit(code)
