"""The tiny executables a runtime execs, rendered for one interpreter and one install.

A runtime execs plugins with its own PATH and a minimal environment, so a launcher
names its interpreter by absolute path (never `/usr/bin/env python3`), runs it
isolated and without `site` (`-IS`, the cheapest start-up), and puts the directories
holding cni_rkt and its dependencies on sys.path itself.
"""

from __future__ import annotations

import os
import sys

from cni_rkt import __version__
from cni_rkt.atomic_files import write_atomically
from cni_rkt.protocol.delegate import LAUNCHER_MARKER

PLUGIN_NAMES = ("bridge", "host-local", "flannel")
# What a plugin process may import; jsonschema is for `validate` only.
_PLUGIN_DEPENDENCIES = ("cni_rkt", "pyroute2")
# Runtimes exec launchers as whatever user they run as; a plugin dir is a bin dir.
LAUNCHER_MODE = 0o755
PLUGIN_DIR_MODE = 0o755


def import_roots(modules: tuple[str, ...] = _PLUGIN_DEPENDENCIES) -> list[str]:
    """The sys.path entries that hold these top-level packages, in order, without repeats."""
    import importlib.util

    roots: list[str] = []
    for name in modules:
        found = importlib.util.find_spec(name)
        if found is None or not found.submodule_search_locations:
            raise RuntimeError(f"{name} is not importable by {sys.executable}")
        root = os.path.dirname(os.path.abspath(list(found.submodule_search_locations)[0]))
        if root not in roots:
            roots.append(root)
    return roots


def interpreter_import_roots(interpreter: str) -> list[str]:
    """import_roots() as seen by `interpreter`, which the launchers will run on.

    A venv's python is a symlink to the system one with another sys.path, so paths are
    compared as given, not resolved.
    """
    if not os.path.isabs(interpreter):
        raise ValueError(f"interpreter must be an absolute path, got {interpreter!r}")
    if not (os.path.isfile(interpreter) and os.access(interpreter, os.X_OK)):
        raise ValueError(f"interpreter {interpreter} is not an executable file")
    if os.path.abspath(interpreter) == os.path.abspath(sys.executable):
        return import_roots()
    import json
    import subprocess

    probe = "import json; from cni_rkt.launcher import import_roots; print(json.dumps(import_roots()))"
    proc = subprocess.run([interpreter, "-c", probe], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise RuntimeError(f"{interpreter} cannot import cni_rkt and its dependencies: {last}")
    return json.loads(proc.stdout)


def render_launcher(plugin: str, interpreter: str, roots: list[str], worker_socket_dir: str = "") -> str:
    """The launcher: our marker line, VERSION, then the worker client (cni_rkt.worker.client).

    VERSION's reply is rendered in and answered before any import (`posix` is built in),
    so that a runtime's VERSION probe costs an interpreter start and nothing more.
    """
    from cni_rkt.protocol.runner import version_reply
    from cni_rkt.worker.identity import install_id

    if not os.path.isabs(interpreter):
        raise ValueError(f"interpreter must be an absolute path, got {interpreter!r}")
    marker = LAUNCHER_MARKER.decode()
    arguments = [repr(plugin), "roots", repr(install_id(interpreter, roots))]
    if worker_socket_dir:
        arguments.append(repr(worker_socket_dir))
    return (
        f"#!{interpreter} -IS\n"
        f"{marker}{plugin} {__version__}\n"
        "import posix, sys\n"
        'if posix.environ.get(b"CNI_COMMAND") == b"VERSION":\n'
        f"    sys.stdout.buffer.write({version_reply()!r})\n"
        "    raise SystemExit(0)\n"
        f"roots = {roots!r}\n"
        "sys.path[:0] = roots\n"
        "from cni_rkt.worker.client import main\n"
        f"main({', '.join(arguments)})\n"
    )


def install_launchers(
    directory: str, interpreter: str | None = None, plugins=PLUGIN_NAMES, worker_socket_dir: str = ""
) -> list[str]:
    """Write one launcher per plugin into `directory` (atomically); return their paths.

    `worker_socket_dir` overrides where the launchers look for their worker (tests give
    each run its own); CNI_RKT_WORKER_SOCKET_DIR in a runtime's environment overrides both.
    """
    interpreter = interpreter or sys.executable
    roots = interpreter_import_roots(interpreter)
    written = []
    for plugin in plugins:
        target = os.path.join(directory, plugin)
        launcher = render_launcher(plugin, interpreter, roots, worker_socket_dir).encode()
        write_atomically(target, launcher, mode=LAUNCHER_MODE, dir_mode=PLUGIN_DIR_MODE)
        written.append(target)
    return written
