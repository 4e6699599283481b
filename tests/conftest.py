"""Fixtures shared by every test tier."""

from __future__ import annotations

import os
import shutil
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))  # tests/sandbox.py as `sandbox`

GO_PLUGIN_DIR = "/usr/lib/cni"
IS_ROOT = os.geteuid() == 0

needs_root = pytest.mark.skipif(not IS_ROOT, reason="needs root: creates network namespaces")
needs_go_plugins = pytest.mark.skipif(
    not os.path.exists(os.path.join(GO_PLUGIN_DIR, "bridge")),
    reason="reference Go plugins not installed (apt-get install containernetworking-plugins)",
)


@pytest.fixture(scope="session")
def plugin_dir(tmp_path_factory) -> str:
    """Our plugins installed as a runtime would exec them (absolute interpreter path).

    They use the pre-loaded worker as in production, on a socket private to this test
    session; the workers they start are ended by PID when the session ends.
    """
    from cni_rkt.launcher import install_launchers
    from worker_process import end_background_workers

    directory = str(tmp_path_factory.mktemp("cni-bin"))
    sockets = os.path.join(str(tmp_path_factory.mktemp("cni-worker")), "sockets")
    install_launchers(directory, worker_socket_dir=sockets)
    try:
        yield directory
    finally:
        end_background_workers(sockets)


@pytest.fixture
def sandbox():
    """A fresh sandbox host netns with room for pods; removed afterwards, also on failure."""
    if not IS_ROOT:
        pytest.skip("needs root: creates network namespaces")
    from sandbox import Sandbox

    box = Sandbox()
    try:
        yield box
    finally:
        box.close()


@pytest.fixture(scope="session")
def host_local_sandbox():
    """One sandbox netns per session where tests/hostlocal_exec.py runs host-local."""
    if not IS_ROOT:
        pytest.skip("needs root: creates network namespaces")
    import hostlocal_exec
    from sandbox import Sandbox

    box = Sandbox()
    hostlocal_exec.SANDBOX_NETNS = box.host
    try:
        yield box
    finally:
        hostlocal_exec.SANDBOX_NETNS = None
        box.close()


@pytest.fixture
def data_dir(tmp_path) -> str:
    path = tmp_path / "ipam"
    path.mkdir()
    yield str(path)
    shutil.rmtree(path, ignore_errors=True)
