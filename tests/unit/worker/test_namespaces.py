"""Entering a caller's namespace by fd: the error the worker reports when it cannot (no root)."""

import os

import pytest

from cni_rkt.worker import namespaces


def test_an_fd_that_is_no_namespace_cannot_be_entered_and_says_setns(tmp_path):
    path = tmp_path / "plain"
    path.write_text("")
    fd = os.open(path, os.O_RDONLY)
    try:
        with pytest.raises(OSError) as caught:
            namespaces.enter(fd, "net")
    finally:
        os.close(fd)
    # The worker's reply quotes this: "... could not take on the caller's context: [Errno 22] setns: ..."
    assert str(caught.value) == "[Errno 22] setns: Invalid argument"

