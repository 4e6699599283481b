"""Whole-file replacement: exact modes, and nothing half-written after a failure."""

import os
import stat

import pytest

from cni_rkt.atomic_files import write_atomically


@pytest.fixture
def umask_077():
    previous = os.umask(0o077)
    try:
        yield
    finally:
        os.umask(previous)


@pytest.mark.parametrize("mode", [0o755, 0o644, 0o600])
def test_the_file_gets_exactly_the_mode_asked_for_whatever_the_umask(tmp_path, umask_077, mode):
    path = tmp_path / "f"
    write_atomically(str(path), b"data", mode=mode, durable=False)
    assert stat.S_IMODE(path.stat().st_mode) == mode
    assert path.read_bytes() == b"data"


def test_replacing_a_file_applies_the_new_mode(tmp_path):
    path = tmp_path / "f"
    write_atomically(str(path), b"old", mode=0o600)
    write_atomically(str(path), b"new", mode=0o755)
    assert (stat.S_IMODE(path.stat().st_mode), path.read_bytes()) == (0o755, b"new")


def test_a_write_interrupted_before_the_rename_keeps_the_old_file_and_no_scratch(tmp_path, monkeypatch):
    path = tmp_path / "f"
    write_atomically(str(path), b"old")

    def interrupted(fd):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "fsync", interrupted)
    with pytest.raises(KeyboardInterrupt):
        write_atomically(str(path), b"new")
    assert os.listdir(tmp_path) == ["f"]
    assert path.read_bytes() == b"old"
