"""Fixtures of the netns tests: our plugins on a CNI_PATH, a Bridge harness per test."""

from __future__ import annotations

import importlib.util
import os

import pytest

from bridge_harness import Bridge

GO_PLUGIN_DIR = "/usr/lib/cni"  # Debian's reference plugins


@pytest.fixture(scope="session")
def cni_bin(tmp_path_factory) -> str:
    """Our bridge plus a host-local: ours once it exists on this branch, else Debian's Go one."""
    from cni_rkt.launcher import install_launchers
    from cni_rkt.worker.control import stop_workers

    directory = str(tmp_path_factory.mktemp("bridge-bin"))
    workers = os.path.join(str(tmp_path_factory.mktemp("bridge-worker")), "sockets")  # this session's own
    if importlib.util.find_spec("cni_rkt.plugins.host_local") is not None:
        install_launchers(directory, plugins=("bridge", "host-local"), worker_socket_dir=workers)
    else:
        install_launchers(directory, plugins=("bridge",), worker_socket_dir=workers)
        os.symlink(os.path.join(GO_PLUGIN_DIR, "host-local"), os.path.join(directory, "host-local"))
    try:
        yield directory
    finally:
        stop_workers(workers)


@pytest.fixture
def bridge(sandbox, cni_bin, data_dir) -> Bridge:
    return Bridge(sandbox, cni_bin, data_dir)
