"""Exec a delegated plugin (IPAM, flannel's delegate) found on CNI_PATH, as libcni does.

The delegate gets the same environment with CNI_COMMAND replaced and the given stdin;
its stderr goes to ours. A failing delegate's error JSON comes back as a CNIError with
the delegate's own code and message.

When the plugin found on CNI_PATH is one of our own launchers, it runs in this process
through `runner.run` instead: the same function the launcher would call, without a second
interpreter start. Set CNI_RKT_INPROCESS_DELEGATE=0 to always exec.
"""

from __future__ import annotations

import errno
import json
import os
import subprocess
import time
from collections.abc import Mapping

from cni_rkt.errors import CNIError, ErrorCode

# Written into every launcher by `cni-rkt install`; the plugin name follows it.
LAUNCHER_MARKER = b"# cni-rkt launcher: "
_EXEC_RETRIES = 5  # libcni retries "text file busy" five times, a second apart


def find_plugin(plugin_type: str, cni_path: tuple[str, ...] | list[str]) -> str:
    if not plugin_type or "/" in plugin_type or "\\" in plugin_type:
        raise CNIError(ErrorCode.INVALID_NETWORK_CONFIG, f"invalid plugin type {plugin_type!r}")
    for directory in cni_path:
        candidate = os.path.join(directory, plugin_type)
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    paths = " ".join(cni_path)
    raise CNIError(ErrorCode.INVALID_NETWORK_CONFIG, f'failed to find plugin "{plugin_type}" in path [{paths}]')


def own_launcher_plugin(executable: str) -> str | None:
    """'<plugin> <version>' if `executable` is one of our launchers, else None."""
    try:
        with open(executable, "rb") as f:
            head = f.read(512)
    except OSError:
        return None
    start = head.find(LAUNCHER_MARKER)
    if start < 0:
        return None
    return head[start + len(LAUNCHER_MARKER) :].split(b"\n", 1)[0].decode().strip() or None


def _in_process_plugin(executable: str, environ: Mapping[str, str]) -> str | None:
    """The plugin to run in this process instead of exec'ing `executable`, if safe.

    Only a launcher of this very version: another install may run other code.
    """
    if environ.get("CNI_RKT_INPROCESS_DELEGATE", "1") == "0":
        return None
    from cni_rkt import __version__
    from cni_rkt.protocol.runner import PLUGIN_MODULES

    name, _, version = (own_launcher_plugin(executable) or "").partition(" ")
    return name if name in PLUGIN_MODULES and version == __version__ else None


def _environment(environ: Mapping[str, str], command: str) -> dict[str, str]:
    env = dict(environ)
    env["CNI_COMMAND"] = command
    return env


def _error_from_output(stdout: bytes, stderr: bytes, plugin_type: str) -> CNIError:
    try:
        obj = json.loads(stdout)
        return CNIError(int(obj["code"]), str(obj.get("msg", "")), str(obj.get("details", "") or ""))
    except (ValueError, KeyError, TypeError):
        text = stderr.decode(errors="replace").strip() or stdout.decode(errors="replace").strip()
        if text:
            return CNIError(ErrorCode.INTERNAL, f'netplugin failed: "{text}"', plugin_type)
        return CNIError(ErrorCode.INTERNAL, "netplugin failed with no error message", plugin_type)


def _exec(executable: str, env: dict[str, str], stdin: bytes) -> tuple[bytes, bytes, int]:
    for attempt in range(_EXEC_RETRIES):
        try:
            proc = subprocess.run([executable], input=stdin, env=env, capture_output=True, check=False)
        except OSError as exc:
            if exc.errno == errno.ETXTBSY and attempt < _EXEC_RETRIES - 1:
                time.sleep(1)
                continue
            raise CNIError(ErrorCode.IO_FAILURE, f"failed to exec plugin {executable}: {exc.strerror}") from exc
        if proc.stderr:
            os.write(2, proc.stderr)
        return proc.stdout, proc.stderr, proc.returncode
    raise AssertionError("unreachable")


# flannel -> bridge -> host-local is two levels; a config that names its own plugin
# (a bridge whose ipam.type is "bridge") would nest until Python's stack runs out
_MAX_NESTED_CALLS = 8
_nested_calls = 0


def _run_nested(plugin: str, plugin_type: str, env: dict[str, str], stdin: bytes) -> tuple[bytes, int]:
    global _nested_calls
    from cni_rkt.protocol.runner import run

    if _nested_calls >= _MAX_NESTED_CALLS:
        raise CNIError(
            ErrorCode.INVALID_NETWORK_CONFIG,
            f'plugin "{plugin_type}" is called in a loop ({_MAX_NESTED_CALLS} delegations deep): '
            "a delegate or ipam \"type\" names a plugin that leads back to itself",
        )
    _nested_calls += 1
    try:
        return run(plugin, env, stdin)
    finally:
        _nested_calls -= 1


def call_plugin(
    plugin_type: str, command: str, stdin: bytes, environ: Mapping[str, str], cni_path: tuple[str, ...]
) -> bytes:
    """Run `plugin_type` with `command`; return its stdout, or raise its error."""
    executable = find_plugin(plugin_type, cni_path)
    env = _environment(environ, command)
    in_process = _in_process_plugin(executable, environ)
    if in_process:
        stdout, code = _run_nested(in_process, plugin_type, env, stdin)
        if code != 0:
            raise _error_from_output(stdout, b"", plugin_type)
        return stdout
    stdout, stderr, code = _exec(executable, env, stdin)
    if code != 0:
        raise _error_from_output(stdout, stderr, plugin_type)
    return stdout


def delegate_add(plugin_type: str, stdin: bytes, environ: Mapping[str, str], cni_path: tuple[str, ...], version: str):
    """ADD through a delegate; its result parsed into our model."""
    return parse_add_answer(call_plugin(plugin_type, "ADD", stdin, environ, cni_path), plugin_type, version)


def parse_add_answer(stdout: bytes, plugin_type: str, version: str):
    """A delegate's ADD output as a Result (for callers that must act between call and parse)."""
    from cni_rkt.protocol.result import parse_result

    try:
        obj = json.loads(stdout)
    except ValueError as exc:
        raise CNIError(ErrorCode.DECODING_FAILURE, f"{plugin_type} printed a result that is not JSON: {exc}") from exc
    return parse_result(obj, version)


def delegate_other(
    plugin_type: str, command: str, stdin: bytes, environ: Mapping[str, str], cni_path: tuple[str, ...]
) -> None:
    """DEL, CHECK, STATUS or GC through a delegate; raises its error."""
    call_plugin(plugin_type, command, stdin, environ, cni_path)
