"""net/links.py without netlink: pure helpers, and LinkRemoval over a fake socket."""

import errno
import os
import re
import threading

import pytest
from pyroute2.netlink.exceptions import NetlinkError

from cni_rkt.errors import CNIError
from cni_rkt.net import links
from cni_rkt.net.links import random_veth_name, vlan_ranges
from cni_rkt.net.netlink import Link


def test_host_veth_names_are_veth_and_eight_hex_digits():
    names = {random_veth_name() for _ in range(20)}
    assert all(re.fullmatch(r"veth[0-9a-f]{8}", n) for n in names)
    assert len(names) > 1


def test_trunk_vlans_fold_into_runs_one_request_each():
    assert vlan_ranges([12, 10, 11, 5, 4094]) == [(5, 5), (10, 12), (4094, 4094)]
    assert vlan_ranges([]) == []


# --- LinkRemoval, with a fake socket -----------------------------------------------

POD_END = Link(7, "eth0", "veth", "0a:58:0a:16:00:02", 1500, 0, 8, "UP", 0)


class FakeSocket:
    """delete_link blocks until `release` is set, as the kernel's grace period does."""

    def __init__(self, error: int = 0):
        self.error = error
        self.release = threading.Event()
        self.deleted: list[int] = []

    def delete_link(self, index: int) -> None:
        self.release.wait(5)
        if self.error:
            raise NetlinkError(self.error)
        self.deleted.append(index)


@pytest.fixture
def fake_lookups(monkeypatch):
    monkeypatch.setattr(links, "find_link", lambda ipr, name: POD_END if name == "eth0" else None)
    monkeypatch.setattr(links, "addresses", lambda ipr, index: ["10.22.0.2/16"])


def test_a_removal_reads_the_addresses_first_and_deletes_while_the_caller_goes_on(fake_lookups):
    sock = FakeSocket()
    removal = links.LinkRemoval(sock, "eth0").start()
    assert removal.addresses == ["10.22.0.2/16"]
    assert sock.deleted == []  # still blocked in the "kernel": the caller is not
    sock.release.set()
    removal.wait()
    assert sock.deleted == [7]


def test_a_failed_deletion_is_raised_by_wait(fake_lookups):
    sock = FakeSocket(error=errno.EBUSY)
    sock.release.set()
    removal = links.LinkRemoval(sock, "eth0").start()
    with pytest.raises(CNIError, match="failed to delete 'eth0': device or resource busy"):
        removal.wait()


def test_a_link_gone_meanwhile_or_never_there_is_not_an_error(fake_lookups):
    sock = FakeSocket(error=errno.ENODEV)
    sock.release.set()
    assert links.remove_link(sock, "eth0") is None
    assert links.remove_link(sock, "eth9") is None


class FakeWatch:
    """A RemovalWatch whose announcement arrives when `announce` is set (a pipe makes it selectable)."""

    def __init__(self):
        self._read, self._write = os.pipe()
        self.lost_track = False
        self.announced_index = None

    def fileno(self) -> int:
        return self._read

    def announce(self, index: int) -> None:
        self.announced_index = index
        os.write(self._write, b"x")

    def announced(self, index: int) -> bool:
        return self.announced_index == index


def test_wait_until_gone_returns_at_the_announcement_and_wait_collects_the_answer(fake_lookups):
    sock, watch = FakeSocket(), FakeWatch()
    removal = links.LinkRemoval(sock, "eth0").start(watch)
    threading.Timer(0.05, watch.announce, args=(7,)).start()  # the deleted end's: not yet
    threading.Timer(0.1, watch.announce, args=(POD_END.peer,)).start()  # its peer's, announced last
    assert removal.wait_until_gone() is True
    assert sock.deleted == []  # the kernel's answer is still to come
    sock.release.set()
    removal.wait()
    assert sock.deleted == [7]


def test_wait_until_gone_without_an_announcement_waits_for_the_deletion_and_raises_its_error(fake_lookups):
    sock, watch = FakeSocket(error=errno.EBUSY), FakeWatch()
    threading.Timer(0.05, sock.release.set).start()
    removal = links.LinkRemoval(sock, "eth0").start(watch)
    with pytest.raises(CNIError, match="device or resource busy"):
        removal.wait_until_gone()
    removal.wait()  # collected once: nothing left to raise
    sock = FakeSocket()
    sock.release.set()
    assert links.LinkRemoval(sock, "eth0").start().wait_until_gone() is False  # no watch: the deletion's end
    assert sock.deleted == [7]
