"""netns paths that name no namespace: a value for DEL, an error naming CNI_NETNS otherwise (no root)."""

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
