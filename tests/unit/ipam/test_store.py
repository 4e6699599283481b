"""DiskStore: Go's bytes on disk, the flocked index, staleness, path safety."""

import errno
import os
import signal
import stat
from ipaddress import ip_address

import pytest

from cni_rkt.errors import CNIError
from cni_rkt.ipam import index as index_module
from cni_rkt.ipam import store as store_module
from cni_rkt.ipam.index import index_path
from cni_rkt.ipam.store import DiskStore, open_store


@pytest.fixture
def data_dir(tmp_path):
    return str(tmp_path / "ipam")


@pytest.fixture
def scans(monkeypatch):
    """Counts full directory scans (index rebuilds)."""
    calls = []
    real = DiskStore.scan

    def counting(self):
        calls.append(self.directory)
        return real(self)

    monkeypatch.setattr(DiskStore, "scan", counting)
    return calls


def reserve(data_dir, ip, cid="c1", ifname="eth0", range_index=0, network="net1"):
    with open_store(data_dir, network) as store:
        return store.reserve(ip_address(ip), cid, ifname, range_index)


def held(data_dir, cid, ifname="eth0", network="net1"):
    with open_store(data_dir, network) as store:
        return [r.name for r in store.attachment_reservations(cid, ifname)]


def test_files_are_byte_compatible_with_the_go_plugin(data_dir):
    assert reserve(data_dir, "10.1.0.2", "cid-1", "eth0", 0)
    assert reserve(data_dir, "fd00::a", "cid-1", "eth0", 1)
    net = os.path.join(data_dir, "net1")
    assert sorted(os.listdir(net)) == ["10.1.0.2", "fd00::a", "last_reserved_ip.0", "last_reserved_ip.1", "lock"]
    with open(os.path.join(net, "10.1.0.2"), "rb") as f:
        assert f.read() == b"cid-1\r\neth0"
    with open(os.path.join(net, "last_reserved_ip.1"), "rb") as f:
        assert f.read() == b"fd00::a"
    assert stat.S_IMODE(os.stat(os.path.join(net, "10.1.0.2")).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(net).st_mode) == 0o755 & ~_umask()
    assert os.path.getsize(os.path.join(net, "lock")) == 0


@pytest.mark.parametrize("content, expected", [(b"10.1.0.9", "10.1.0.9"), (b"10.1.0.9\n", None),
                                               (b" 10.1.0.9", None), (b"garbage", None), (b"", None)])
def test_last_reserved_is_read_as_go_reads_it(data_dir, content, expected):
    reserve(data_dir, "10.1.0.2")
    with open(os.path.join(data_dir, "net1", "last_reserved_ip.0"), "wb") as f:
        f.write(content)
    with open_store(data_dir, "net1") as store:
        last = store.last_reserved(0)
    assert (str(last) if last else None) == expected


def test_last_reserved_is_rewritten_whole_and_0644_whatever_the_umask(data_dir):
    reserve(data_dir, "10.1.0.10")
    old_umask = os.umask(0o077)
    try:
        reserve(data_dir, "10.1.0.9", cid="c2")  # a shorter name: nothing of the longer one trails it
    finally:
        os.umask(old_umask)
    path = os.path.join(data_dir, "net1", "last_reserved_ip.0")
    with open(path, "rb") as f:
        assert f.read() == b"10.1.0.9"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o644


@pytest.mark.parametrize("kind", ["fifo", "symlink"])
def test_last_reserved_that_is_no_regular_file_is_replaced_not_followed(data_dir, tmp_path, kind):
    """A FIFO must not hang the call (reading or writing it), a symlink must not be written through."""
    reserve(data_dir, "10.1.0.2")
    path = os.path.join(data_dir, "net1", "last_reserved_ip.0")
    os.unlink(path)
    outside = tmp_path / "outside"
    outside.write_text("10.1.0.200")
    os.mkfifo(path) if kind == "fifo" else os.symlink(outside, path)
    signal.signal(signal.SIGALRM, lambda *_: pytest.fail("the call hung"))
    signal.alarm(10)
    try:
        with open_store(data_dir, "net1") as store:
            assert store.last_reserved(0) is None  # as an unreadable file: round-robin starts over
            assert store.reserve(ip_address("10.1.0.3"), "c2", "eth0", 0)
    finally:
        signal.alarm(0)
    assert stat.S_ISREG(os.lstat(path).st_mode)
    with open(path, "rb") as f:
        assert f.read() == b"10.1.0.3"
    assert outside.read_text() == "10.1.0.200"


def test_a_data_dir_that_is_a_file_is_an_io_error_naming_path_and_reason(tmp_path):
    (tmp_path / "afile").write_text("x")
    with pytest.raises(CNIError) as caught:
        with open_store(str(tmp_path / "afile"), "net1"):
            pass
    assert (caught.value.code, caught.value.msg) == (
        5, f"host-local store: open {tmp_path}/afile/net1: Not a directory")


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_claiming_is_exclusive(data_dir):
    assert reserve(data_dir, "10.1.0.2", "a")
    assert not reserve(data_dir, "10.1.0.2", "b")
    assert held(data_dir, "a") == ["10.1.0.2"] and held(data_dir, "b") == []


def test_legacy_files_are_found_only_when_no_exact_match_exists(data_dir):
    net = os.path.join(data_dir, "net1")
    os.makedirs(net)
    with open(os.path.join(net, "10.1.0.7"), "w") as f:
        f.write("old-cid")  # written by a pre-2018 host-local
    assert held(data_dir, "old-cid", "eth0") == ["10.1.0.7"]
    assert reserve(data_dir, "10.1.0.8", "old-cid", "eth1")
    assert held(data_dir, "old-cid", "eth1") == ["10.1.0.8"]


def test_unchanged_directory_is_not_rescanned(data_dir, scans):
    reserve(data_dir, "10.1.0.2")
    reserve(data_dir, "10.1.0.3", "c2")
    assert held(data_dir, "c2") == ["10.1.0.3"]
    assert len(scans) == 1  # only the first open built the index


def test_changes_by_another_writer_rebuild_the_index(data_dir, scans):
    reserve(data_dir, "10.1.0.2", "ours")
    reserve(data_dir, "10.1.0.3", "gone")
    net = os.path.join(data_dir, "net1")
    # the Go plugin reserves one address and releases another without knowing our index
    with open(os.path.join(net, "10.1.0.4"), "w") as f:
        f.write("theirs\r\neth0")
    os.unlink(os.path.join(net, "10.1.0.3"))
    scans.clear()
    with open_store(data_dir, "net1") as store:
        assert not store.reserve(ip_address("10.1.0.4"), "ours2", "eth0", 0)
        assert [r.name for r in store.attachment_reservations("theirs", "eth0")] == ["10.1.0.4"]
        assert store.attachment_reservations("gone", "eth0") == []
    assert len(scans) == 1


def test_missing_or_damaged_index_is_rebuilt(data_dir):
    reserve(data_dir, "10.1.0.2", "c1")
    os.unlink(index_path(data_dir, "net1"))
    assert held(data_dir, "c1") == ["10.1.0.2"]
    with open(index_path(data_dir, "net1"), "wb") as f:
        f.write(b"this is not a database" * 100)
    assert held(data_dir, "c1") == ["10.1.0.2"]


def test_index_lives_outside_the_network_directory(data_dir):
    reserve(data_dir, "10.1.0.2")
    assert os.path.dirname(index_path(data_dir, "net1")) == os.path.join(data_dir, ".cni-rkt-index")
    assert not any(name.startswith(".") for name in os.listdir(os.path.join(data_dir, "net1")))


def test_scratch_files_of_killed_processes_are_removed_under_lock(data_dir):
    reserve(data_dir, "10.1.0.2")
    leftover = os.path.join(data_dir, "net1", ".cni-rkt-tmp-10.1.0.3.12345")
    with open(leftover, "w") as f:
        f.write("dead\r\neth0")
    assert held(data_dir, "dead") == []
    assert not os.path.exists(leftover)


def test_release_checks_the_file_still_belongs_to_the_attachment(data_dir):
    reserve(data_dir, "10.1.0.2", "c1")
    with open_store(data_dir, "net1") as store:
        [mine] = store.attachment_reservations("c1", "eth0")
        # rewritten in place (same mtime tick is possible): content wins over the index
        with open(os.path.join(store.directory, "10.1.0.2"), "w") as f:
            f.write("c2\r\neth0")
        assert not store.release_reservation(mine)
        assert os.path.exists(os.path.join(store.directory, "10.1.0.2"))
        assert [r.name for r in store.attachment_reservations("c2", "eth0")] == ["10.1.0.2"]


@pytest.mark.parametrize("network", ["..", ".", "a/b", "../escape", "", "/abs", ".hidden"])
def test_network_names_cannot_leave_the_data_dir(data_dir, network):
    with pytest.raises(CNIError) as caught:
        with open_store(data_dir, network):
            pass
    assert caught.value.code == 7
    assert not os.path.exists(os.path.join(os.path.dirname(data_dir), "escape"))


def test_symlinked_network_directory_is_refused(data_dir, tmp_path):
    os.makedirs(data_dir)
    os.symlink(str(tmp_path / "elsewhere"), os.path.join(data_dir, "net1"))
    with pytest.raises(CNIError) as caught:
        with open_store(data_dir, "net1"):
            pass
    assert caught.value.code == 7 and "resolves outside" in caught.value.msg


def test_planted_symlink_is_never_written_through(data_dir, tmp_path):
    victim = tmp_path / "victim"
    victim.write_text("precious")
    os.makedirs(os.path.join(data_dir, "net1"))
    os.symlink(str(victim), os.path.join(data_dir, "net1", "10.1.0.2"))
    assert not reserve(data_dir, "10.1.0.2")
    assert victim.read_text() == "precious"


def test_coarse_timestamps_leave_the_index_unverified(data_dir, scans, monkeypatch):
    """On a file system whose mtimes are whole seconds, every open rescans (safe, slower)."""
    real_stamp = DiskStore.stamp

    def coarse(self):
        dev, ino, mtime_ns, boot = real_stamp(self).split(":")
        return f"{dev}:{ino}:{int(mtime_ns) // 10**9 * 10**9}:{boot}"

    monkeypatch.setattr(DiskStore, "stamp", coarse)
    reserve(data_dir, "10.1.0.2")
    reserve(data_dir, "10.1.0.3", "c2")
    assert len(scans) == 2


def test_settle_waits_for_the_clock_tick(monkeypatch):
    ticks = iter([5, 5, 5, 6])
    monkeypatch.setattr(store_module.time, "clock_gettime_ns", lambda clock: next(ticks))
    monkeypatch.setattr(store_module.time, "sleep", lambda s: None)
    assert store_module._settle(5)


def test_an_empty_network_keeps_no_index(data_dir):
    reserve(data_dir, "10.1.0.2", "c1")
    assert os.path.exists(index_path(data_dir, "net1"))
    with open_store(data_dir, "net1") as store:
        store.release(ip_address("10.1.0.2"))
    assert not os.path.exists(index_path(data_dir, "net1"))
    assert sorted(os.listdir(os.path.join(data_dir, "net1"))) == ["last_reserved_ip.0", "lock"]


def test_file_systems_without_hard_links_still_claim_exclusively(data_dir, monkeypatch):
    def no_links(src, dst):
        raise OSError(errno.EPERM, "Operation not permitted")

    monkeypatch.setattr(store_module.os, "link", no_links)
    assert reserve(data_dir, "10.1.0.2", "a")
    assert not reserve(data_dir, "10.1.0.2", "b")
    with open(os.path.join(data_dir, "net1", "10.1.0.2"), "rb") as f:
        assert f.read() == b"a\r\neth0"
    assert [n for n in os.listdir(os.path.join(data_dir, "net1")) if n.startswith(".")] == []


def test_odd_entries_named_like_addresses_are_skipped_not_fatal(data_dir):
    net = os.path.join(data_dir, "net1")
    os.makedirs(os.path.join(net, "10.1.0.2"))  # a directory
    os.symlink("/nonexistent", os.path.join(net, "10.1.0.3"))  # a dangling symlink
    with open_store(data_dir, "net1") as store:
        assert store.reservations() == []
        assert not store.reserve(ip_address("10.1.0.2"), "c1", "eth0", 0)
        assert store.reserve(ip_address("10.1.0.4"), "c1", "eth0", 0)


class _Clock:
    """Fake coarse clock and directory stamps for DiskStore.finish."""

    def __init__(self, monkeypatch, ticks, mtimes):
        self.ticks, self.mtimes, self.settled = iter(ticks), iter(mtimes), []
        monkeypatch.setattr(store_module.time, "clock_gettime_ns", lambda clock: next(self.ticks))
        monkeypatch.setattr(DiskStore, "stamp", lambda store: f"1:2:{next(self.mtimes)}:boot")
        monkeypatch.setattr(store_module, "_settle", lambda mtime_ns: self.settled.append(mtime_ns) or True)


def _finish(tmp_path):
    return DiskStore(str(tmp_path), index=None).finish()


def test_finish_after_the_tick_of_the_last_change_records_the_stamp_at_once(monkeypatch, tmp_path):
    clock = _Clock(monkeypatch, ticks=[1_000_000_001 + 4_000_000], mtimes=[1_000_000_001])
    assert _finish(tmp_path) == "1:2:1000000001:boot"
    assert clock.settled == [] and os.listdir(tmp_path) == []


def test_fine_grained_timestamps_need_no_wait_for_the_clock_tick(monkeypatch, tmp_path):
    # the probe's change, right after a stat and within the same tick, got a later mtime
    clock = _Clock(monkeypatch, ticks=[1_000_000_001, 1_000_000_001], mtimes=[1_000_000_001, 1_000_123_456])
    assert _finish(tmp_path) == "1:2:1000123456:boot"
    assert clock.settled == []
    assert os.listdir(tmp_path) == []  # the probe file is gone


@pytest.mark.parametrize(
    "ticks, mtimes",
    [
        ([1_000_000_001, 1_000_000_001], [1_000_000_001, 1_000_000_001]),  # coarse: same mtime in the tick
        ([1_000_000_001, 1_004_000_001], [1_000_000_001, 1_004_000_001]),  # coarse: the next tick's time
    ],
)
def test_coarse_timestamps_wait_out_the_tick_of_the_last_change(monkeypatch, tmp_path, ticks, mtimes):
    clock = _Clock(monkeypatch, ticks=ticks, mtimes=mtimes)
    assert _finish(tmp_path) == f"1:2:{mtimes[1]}:boot"
    assert clock.settled == [mtimes[1]]  # waited for the stamp it records, the probe's


def _go_files(data_dir, count, network="net1"):
    """`count` reservations c0.. written as the Go plugin writes them, then indexed once."""
    net = os.path.join(data_dir, network)
    os.makedirs(net)
    for i in range(count):
        with open(os.path.join(net, f"10.1.{(i + 2) >> 8}.{(i + 2) & 255}"), "w") as f:
            f.write(f"c{i}\r\neth0")
    held(data_dir, "nobody")


def test_a_truncated_index_is_rebuilt_before_use(data_dir, scans):
    _go_files(data_dir, 2000)
    path = index_path(data_dir, "net1")
    os.truncate(path, os.path.getsize(path) - 4096)  # its last page lost
    scans.clear()
    assert held(data_dir, "c1999") == ["10.1.7.209"]
    assert len(scans) == 1


def test_truncation_is_told_by_the_sqlite_header(data_dir):
    path = index_path(data_dir, "net1")
    assert not index_module.is_truncated(path)  # no index yet
    _go_files(data_dir, 2000)
    assert not index_module.is_truncated(path)
    os.truncate(path, os.path.getsize(path) - 4096)
    assert index_module.is_truncated(path)
    os.truncate(path, 50)
    assert index_module.is_truncated(path)


def test_after_a_reboot_a_damaged_index_is_rebuilt_without_reading_it(data_dir, monkeypatch):
    _go_files(data_dir, 2000)
    path = index_path(data_dir, "net1")
    with open(path, "r+b") as f:  # the tail of the file never reached the disk
        f.seek(os.path.getsize(path) - 8192)
        f.write(bytes(8192))
    monkeypatch.setattr(store_module, "_boot_id", lambda: "another-boot")
    assert held(data_dir, "c1999") == ["10.1.7.209"]
    with open_store(data_dir, "net1") as store:
        assert len(store.reservations()) == 2000


def test_an_index_failing_mid_operation_is_dropped_and_rebuilt_by_the_next_call(data_dir, scans, monkeypatch):
    _go_files(data_dir, 10)

    def malformed(*args):
        raise store_module.sqlite3.DatabaseError("database disk image is malformed")

    with monkeypatch.context() as patch:
        patch.setattr(store_module.Index, "by_attachment", malformed)
        with pytest.raises(CNIError) as caught:
            held(data_dir, "c3")
    assert caught.value.code == 5 and "index" in caught.value.msg
    assert not os.path.exists(index_path(data_dir, "net1"))
    scans.clear()
    assert held(data_dir, "c3") == ["10.1.0.5"]
    assert len(scans) == 1


def test_a_foreign_change_right_after_each_call_is_always_seen(data_dir):
    """Whatever the file system's timestamps, a change made the instant a call returns (often in
    the same clock tick) must never leave the index trusting its old view."""
    net = os.path.join(data_dir, "net1")
    for i in range(50):
        assert reserve(data_dir, f"10.1.1.{i + 2}", f"ours{i}")
        with open(os.path.join(net, f"10.1.2.{i + 2}"), "w") as f:  # the Go plugin, just after us
            f.write(f"theirs{i}\r\neth0")
        assert held(data_dir, f"theirs{i}") == [f"10.1.2.{i + 2}"]
        os.unlink(os.path.join(net, f"10.1.1.{i + 2}"))  # and a release behind our back
        assert held(data_dir, f"ours{i}") == []
