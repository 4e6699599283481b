"""The worker protocol's framing: what one side writes, the other reads back exactly."""

import socket
import time

import pytest

from cni_rkt.worker import wire


def test_fields_survive_a_round_trip_through_a_socket():
    fields = [wire.PROTOCOL, b"", b"\0\xff binary", b"x" * 200_000]
    left, right = socket.socketpair()
    with left, right:
        left.sendall(wire.encode_fields(fields))
        assert wire.read_frame(right) == fields


def test_environment_round_trip_keeps_equals_signs_and_undecodable_bytes():
    environ = {"CNI_ARGS": "IP=10.1.2.3;K8S_POD_NAME=a=b", "ODD": "caf\udce9", "EMPTY": ""}
    assert wire.decode_environ(wire.encode_environ(environ)) == environ
    assert wire.decode_environ(b"") == {}


@pytest.mark.parametrize(
    "data, message",
    [
        (b"\0\0\0\x06\0\0\0\x09ab", "truncated field"),
        (b"\0\0\0\x02\0\0", "truncated field length"),
    ],
)
def test_truncated_frames_are_protocol_errors(data, message):
    left, right = socket.socketpair()
    with left, right:
        left.sendall(data)
        with pytest.raises(wire.ProtocolError, match=message):
            wire.read_frame(right)


def test_peer_hanging_up_mid_frame_is_a_protocol_error():
    left, right = socket.socketpair()
    with right:
        left.sendall(wire.encode_fields([b"result", b"0", b"{}"])[:7])
        left.close()
        with pytest.raises(wire.ProtocolError, match="closed mid-frame"):
            wire.read_frame(right)


def test_oversized_frame_is_refused_before_reading_it():
    with pytest.raises(wire.ProtocolError, match="too large"):
        wire.frame_length((wire.MAX_FRAME + 1).to_bytes(4, "big"))


def test_environment_entry_without_equals_is_refused():
    with pytest.raises(wire.ProtocolError):
        wire.decode_environ(b"A=1\0B")


def test_a_frame_must_arrive_whole_by_the_deadline():
    """Each byte in time is not enough: past the deadline the reader stops, bytes pending or not."""
    ours, theirs = socket.socketpair()
    with ours, theirs:
        theirs.sendall(wire.encode_fields([b"slow"])[:5])  # and the rest a byte at a time, say
        with pytest.raises(wire.ProtocolError, match="too long"):
            wire.receive_frame_with_fds(ours, deadline=time.monotonic() - 1)
