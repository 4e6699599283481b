"""RouteSocket's request/reply loop over a fake kernel socket: errors and dump retries."""

import socket
import struct

import pytest
from pyroute2.netlink.exceptions import NetlinkError
from pyroute2.netlink.rtnl.ifaddrmsg import ifaddrmsg

from cni_rkt.net import rtnl

NLMSG_ERROR, NLMSG_DONE, RTM_NEWADDR = 2, 3, 20


def header(length: int, kind: int, flags: int, sequence: int) -> bytes:
    return struct.pack("=IHHII", length, kind, flags, sequence, 0)


def address_message(sequence: int, address: str, flags: int = 0) -> bytes:
    message = ifaddrmsg()
    message["family"], message["prefixlen"], message["index"] = socket.AF_INET, 24, 3
    message["attrs"] = [("IFA_ADDRESS", address)]
    message["header"]["type"], message["header"]["flags"] = RTM_NEWADDR, flags
    message["header"]["sequence_number"] = sequence
    message.encode()
    return bytes(message.data)


def done(sequence: int, status: int = 0, flags: int = 0) -> bytes:
    return header(20, NLMSG_DONE, flags, sequence) + struct.pack("=i", status)


class FakeKernel:
    """Answers each request with the next canned reply, addressed to its sequence number."""

    def __init__(self, *replies):
        self.replies = list(replies)
        self.sequences: list[int] = []

    def send(self, data: bytes) -> int:
        self.sequences.append(struct.unpack_from("=I", data, 8)[0])
        return len(data)

    def recv(self, _size: int) -> bytes:
        return self.replies.pop(0)(self.sequences[-1])

    def close(self) -> None:
        pass


def socket_with(*replies) -> rtnl.RouteSocket:
    sock = rtnl.RouteSocket()
    sock._sock.close()
    sock._sock = FakeKernel(*replies)
    return sock


def interrupted_dump(sequence: int) -> bytes:
    return address_message(sequence, "10.0.0.1", flags=rtnl.NLM_F_DUMP_INTR) + done(sequence)


def clean_dump(sequence: int) -> bytes:
    return address_message(sequence, "10.0.0.2") + done(sequence)


def test_a_dump_the_kernel_flags_as_interrupted_is_made_again():
    sock = socket_with(interrupted_dump, clean_dump)
    assert [m.get_attr("IFA_ADDRESS") for m in sock.dump_addresses(3)] == ["10.0.0.2"]
    assert len(sock._sock.sequences) == 2


def test_a_dump_that_never_settles_is_an_error():
    sock = socket_with(*[interrupted_dump] * rtnl.DUMP_ATTEMPTS)
    with pytest.raises(NetlinkError, match="kept changing"):
        sock.dump_addresses(3)


def late_answer_then_refusal(sequence: int) -> bytes:
    return done(sequence - 1) + header(36, NLMSG_ERROR, 0, sequence) + struct.pack("=i", -17) + bytes(16)


def test_a_refusal_raises_its_errno_and_a_late_answer_is_skipped():
    sock = socket_with(late_answer_then_refusal)
    with pytest.raises(NetlinkError) as refused:
        sock.delete_link(5)
    assert refused.value.code == 17
