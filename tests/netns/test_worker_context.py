"""A request served by the worker sees the files its caller sees, also from a chroot.

The caller here is a forked process of the test: it enters the sandbox's host netns and a
private mount namespace (where it binds /proc into its new root, which no one else sees),
chroots into a directory and asks the worker, through the launcher's own client code, to
DEL a host-local reservation. The worker has a private socket dir inside that root and is
ended by PID; the forked caller is reaped by PID; its mount namespace goes with it.
"""

from __future__ import annotations

import ctypes
import json
import os
import shutil
import tempfile

from conftest import needs_root
from worker_process import in_a_fork, request_key, running_worker

from cni_rkt.ipam.files import file_content
from cni_rkt.net.netns import CLONE_NEWNET, setns
from cni_rkt.worker import client

CLONE_NEWNS = 0x00020000
MS_BIND, MS_REC, MS_PRIVATE = 0x1000, 0x4000, 0x40000
NETWORK = "ctx"
RESERVED = "10.45.0.2"

_libc = ctypes.CDLL(None, use_errno=True)


def _check(result: int, what: str) -> None:
    if result != 0:
        raise OSError(ctypes.get_errno(), what)


def reserve(data_dir: str, container: str) -> str:
    """A host-local reservation file for `container`, as host-local writes it; its path."""
    os.makedirs(os.path.join(data_dir, NETWORK), exist_ok=True)
    path = os.path.join(data_dir, NETWORK, RESERVED)
    with open(path, "wb") as f:
        f.write(file_content(container, "eth0"))
    return path


def enter_chroot(root: str, netns_path: str) -> None:
    with open(netns_path) as netns:
        setns(netns.fileno(), CLONE_NEWNET)
    _check(_libc.unshare(CLONE_NEWNS), "unshare")
    _check(_libc.mount(None, b"/", None, MS_REC | MS_PRIVATE, None), "mount --make-rprivate /")
    os.makedirs(os.path.join(root, "proc"), exist_ok=True)
    _check(_libc.mount(b"/proc", os.path.join(root, "proc").encode(), None, MS_BIND | MS_REC, None), "bind /proc")
    os.chroot(root)
    os.chdir("/")


def chrooted_request(root: str, netns_path: str, socket_path: str, environ: dict, stdin: bytes) -> str:
    """client.request from a forked process chrooted into `root` (in a private mount
    namespace, in the sandbox's netns); what it returned or raised, as text."""
    key = request_key()

    def ask_from_the_chroot():
        enter_chroot(root, netns_path)
        return client.request(socket_path, key, "host-local", environ, stdin)

    return in_a_fork(ask_from_the_chroot)


@needs_root
def test_a_request_from_a_chrooted_caller_acts_on_the_files_inside_its_root(sandbox):
    data_dir = "/var/lib/cni-rkt-test-ctx-data"  # as the caller names it; on the host only inside `root`
    assert not os.path.exists(data_dir)
    root = tempfile.mkdtemp(prefix="cni-rkt-ctx-")  # short: a socket path has 107 bytes at most
    try:
        seen_by_caller = reserve(root + data_dir, "c1")
        stdin = json.dumps({"cniVersion": "1.0.0", "name": NETWORK, "type": "host-local",
                            "ipam": {"type": "host-local", "subnet": "10.45.0.0/29", "dataDir": data_dir}}).encode()
        environ = {"CNI_COMMAND": "DEL", "CNI_CONTAINERID": "c1", "CNI_IFNAME": "eth0", "CNI_NETNS": "",
                   "CNI_PATH": "/nowhere"}
        with running_worker(os.path.join(root, "sockets")) as (_proc, path):
            verdict = chrooted_request(root, sandbox.host_path, "/sockets/" + os.path.basename(path), environ, stdin)
        assert verdict == "returned (b'', 0)", verdict
        assert not os.path.exists(seen_by_caller)  # released where the caller sees its dataDir
        assert not os.path.exists(data_dir)  # and nothing made outside its root
    finally:
        shutil.rmtree(root)
        shutil.rmtree(data_dir, ignore_errors=True)  # made by this test's request if it went wrong
