"""netns paths that name no namespace: a value for DEL, an error naming CNI_NETNS otherwise (no root)."""

import errno
import os

import pytest

from cni_rkt.errors import CNIError, ErrorCode
from cni_rkt.net import netns


@pytest.mark.parametrize("kind", ["empty", "missing", "plain file"])
def test_absent_namespace_is_none_for_del(tmp_path, kind):
    path = {"empty": "", "missing": str(tmp_path / "gone"), "plain file": str(tmp_path / "file")}[kind]
    if kind == "plain file":  # what a netns bind mount leaves behind after a reboot
        (tmp_path / "file").write_text("")
    assert netns.open_netns_if_present(path) is None


@pytest.mark.parametrize("kind", ["missing", "plain file"])
def test_absent_namespace_is_an_error_for_add(tmp_path, kind):
    path = tmp_path / "x"
    if kind == "plain file":
        path.write_text("")
    with pytest.raises(CNIError) as caught:
        netns.open_netns(str(path))
    assert caught.value.code == ErrorCode.INVALID_ENVIRONMENT
    assert caught.value.details == "CNI_NETNS" and str(path) in caught.value.msg


def test_own_namespace_opens_by_proc_path():
    ns = netns.open_netns("/proc/self/ns/net")
    try:
        assert ns.fd >= 0 and ns.path == "/proc/self/ns/net"
    finally:
        ns.close()


@pytest.fixture
def not_a_namespace(tmp_path):
    """An open fd that setns(2) refuses with EINVAL, even without root."""
    path = tmp_path / "plain"
    path.write_text("")
    fd = os.open(path, os.O_RDONLY)
    try:
        yield str(path), fd
    finally:
        os.close(fd)


def test_setns_failure_names_the_call_and_keeps_the_errno(not_a_namespace):
    _path, fd = not_a_namespace
    with pytest.raises(OSError) as caught:
        netns.setns(fd, netns.CLONE_NEWNET)
    assert caught.value.errno == errno.EINVAL
    assert str(caught.value) == "[Errno 22] setns: Invalid argument"


def test_failing_to_enter_is_code_999_naming_the_path_and_we_stay_home(not_a_namespace):
    path, fd = not_a_namespace
    home = os.stat("/proc/thread-self/ns/net").st_ino
    with pytest.raises(CNIError) as caught:
        with netns.entered(netns.NetNS(path, fd)):
            pytest.fail("the block ran outside the namespace it asked for")
    assert caught.value.code == ErrorCode.INTERNAL
    assert caught.value.msg == f'failed to enter netns "{path}": Invalid argument'
    assert os.stat("/proc/thread-self/ns/net").st_ino == home
