"""Allocation order and rules over an in-memory store (no disk)."""

from ipaddress import ip_address

import pytest

from cni_rkt.errors import CNIError
from cni_rkt.ipam.allocator import allocate_all, assign_requested, scan_order
from cni_rkt.ipam.ranges import canonical_range, canonical_range_set


class MemoryStore:
    """The Store protocol in a dict: address -> (container id, ifname or None for legacy)."""

    def __init__(self, held=None, last=None):
        self.held = {ip_address(ip): owner for ip, owner in (held or {}).items()}
        self.last = {i: ip_address(ip) for i, ip in (last or {}).items()}

    def reserve(self, ip, container_id, ifname, range_index):
        if ip in self.held:
            return False
        self.held[ip] = (container_id, ifname)
        self.last[range_index] = ip
        return True

    def release(self, ip):
        self.held.pop(ip, None)

    def held_by(self, container_id, ifname):
        return [ip for ip, (c, i) in self.held.items() if c == container_id and i in (ifname, None)]

    def last_reserved(self, range_index):
        return self.last.get(range_index)

    def taken_between(self, family, first, last, limit):
        found = sorted(int(ip) for ip in self.held if ip.version == family and first <= int(ip) <= last)
        return found[:limit]


def rset(*specs):
    return canonical_range_set([canonical_range(*s) if isinstance(s, tuple) else canonical_range(s) for s in specs])


_containers = iter(range(1_000_000))


def allocate_n(store, range_set, n):
    got = []
    for _ in range(n):
        [(ip, _)] = allocate_all(store, (range_set,), (), f"c{next(_containers)}", "eth0")
        got.append(str(ip))
    return got


def test_round_robin_skips_the_gateway_and_wraps_after_releases():
    store = MemoryStore()
    rs = rset("10.1.0.0/29")  # .1-.6, gateway .1
    assert allocate_n(store, rs, 5) == ["10.1.0.2", "10.1.0.3", "10.1.0.4", "10.1.0.5", "10.1.0.6"]
    store.release(ip_address("10.1.0.3"))
    store.release(ip_address("10.1.0.5"))
    # after .6 (the last reserved) it wraps to the start, skips .1 and the taken .2
    assert allocate_n(store, rs, 2) == ["10.1.0.3", "10.1.0.5"]


def test_starts_after_last_reserved_and_tries_it_last():
    rs = rset("10.1.0.0/29")
    order = [(r.start, lo, hi) for r, lo, hi in scan_order(rs, ip_address("10.1.0.4"))]
    assert [(ip_address(lo), ip_address(hi)) for _, lo, hi in order] == [
        (ip_address("10.1.0.5"), ip_address("10.1.0.6")),
        (ip_address("10.1.0.1"), ip_address("10.1.0.4")),
    ]
    store = MemoryStore(held={"10.1.0.5": ("x", "eth0"), "10.1.0.6": ("y", "eth0")}, last={0: "10.1.0.4"})
    assert allocate_n(store, rs, 1) == ["10.1.0.2"]


def test_last_reserved_outside_the_set_restarts_at_range_start():
    store = MemoryStore(last={0: "192.168.0.9"})
    assert allocate_n(store, rset(("10.1.0.0/24", "10.1.0.100")), 1) == ["10.1.0.100"]


def test_multi_range_set_walks_ranges_in_order_and_wraps_across_them():
    rs = rset(("10.1.0.0/29", "10.1.0.5"), ("10.2.0.0/29", "10.2.0.5"))
    store = MemoryStore()
    assert allocate_n(store, rs, 4) == ["10.1.0.5", "10.1.0.6", "10.2.0.5", "10.2.0.6"]
    store.release(ip_address("10.1.0.6"))
    assert allocate_n(store, rs, 1) == ["10.1.0.6"]  # wrapped from the end of the last range


def test_gateway_inside_a_custom_range_is_skipped():
    store = MemoryStore()
    rs = rset(("10.1.0.0/29", "10.1.0.2", "10.1.0.4", "10.1.0.3"))
    assert allocate_n(store, rs, 2) == ["10.1.0.2", "10.1.0.4"]


def test_a_gateway_of_the_other_family_skips_no_address_as_in_go():
    # ::3 and 0.0.0.3 are the same number: only a gateway of the range's own family is skipped.
    rs = rset(("::/126", None, None, "0.0.0.3"))
    assert str(rs.ranges[0].gateway) == "0.0.0.3"
    assert allocate_n(MemoryStore(), rs, 3) == ["::1", "::2", "::3"]


def test_exhaustion_names_the_range_set():
    store = MemoryStore()
    rs = rset("10.1.0.0/30")
    allocate_n(store, rs, 1)
    with pytest.raises(CNIError) as caught:
        allocate_all(store, (rs,), (), "late", "eth0")
    assert (caught.value.code, caught.value.msg) == (
        999, "failed to allocate for range 0: no IP addresses available in range set: 10.1.0.1-10.1.0.2")


def test_duplicate_attachment_is_refused_like_the_reference():
    store = MemoryStore()
    rs = rset("10.1.0.0/24")
    allocate_all(store, (rs,), (), "c1", "eth0")
    with pytest.raises(CNIError) as caught:
        allocate_all(store, (rs,), (), "c1", "eth0")
    assert caught.value.msg == (
        "failed to allocate for range 0: 10.1.0.2 has been allocated to c1, duplicate allocation is not allowed")
    assert allocate_all(store, (rs,), (), "c1", "eth1")  # another interface of the same container is fine


def test_legacy_file_of_the_container_also_counts_as_a_duplicate():
    store = MemoryStore(held={"10.1.0.9": ("c1", None)})
    with pytest.raises(CNIError, match="10.1.0.9 has been allocated to c1"):
        allocate_all(store, (rset("10.1.0.0/24"),), (), "c1", "eth0")


def test_a_duplicate_is_named_as_go_names_it_first_file_name_in_string_order():
    store = MemoryStore(held={"10.1.0.9": ("c1", "eth0"), "10.1.0.10": ("c1", None)})
    with pytest.raises(CNIError, match="10.1.0.10 has been allocated to c1"):
        allocate_all(store, (rset("10.1.0.0/24"),), (), "c1", "eth0")


def test_requested_ips_go_to_the_first_containing_range_set():
    v4, v6 = rset("10.1.0.0/24"), rset("fd00::/120")
    wanted, leftovers = assign_requested((v4, v6), (ip_address("fd00::20"), ip_address("10.1.0.50"), ip_address("::1")))
    assert ([str(w) for w in wanted], leftovers) == (["10.1.0.50", "fd00::20"], [ip_address("::1")])
    store = MemoryStore()
    got = allocate_all(store, (v4, v6), (ip_address("fd00::20"),), "c1", "eth0")
    assert [str(ip) for ip, _ in got] == ["10.1.0.2", "fd00::20"]


@pytest.mark.parametrize(
    "requested, msg",
    [
        (["10.1.0.1"], "failed to allocate for range 0: requested ip 10.1.0.1 is subnet's gateway"),
        (["10.9.0.1"], "failed to allocate all requested IPs: 10.9.0.1"),
        (["10.1.0.5", "10.1.0.6"], "failed to allocate all requested IPs: 10.1.0.6"),
    ],
)
def test_requested_ip_errors_are_config_errors_and_leave_nothing(requested, msg):
    store = MemoryStore()
    with pytest.raises(CNIError) as caught:
        allocate_all(store, (rset("10.1.0.0/24"),), tuple(ip_address(r) for r in requested), "c1", "eth0")
    assert (caught.value.code, caught.value.msg) == (7, msg)
    assert store.held == {}


def test_range_set_errors_come_before_unplaced_requested_ips_as_in_the_reference():
    store = MemoryStore(held={"10.1.0.2": ("c1", "eth0")})
    with pytest.raises(CNIError, match="10.1.0.2 has been allocated to c1, duplicate allocation"):
        allocate_all(store, (rset("10.1.0.0/24"),), (ip_address("10.9.0.1"),), "c1", "eth0")
    # the reference allocates before it notices the leftover, so round-robin moves on
    with pytest.raises(CNIError, match="failed to allocate all requested IPs: 10.9.0.1"):
        allocate_all(store, (rset("10.1.0.0/24"),), (ip_address("10.9.0.1"),), "c2", "eth0")
    assert store.last[0] == ip_address("10.1.0.3") and list(store.held) == [ip_address("10.1.0.2")]


def test_a_taken_requested_ip_fails_and_rolls_back_earlier_range_sets():
    store = MemoryStore(held={"fd00::20": ("other", "eth0")})
    with pytest.raises(CNIError) as caught:
        allocate_all(store, (rset("10.1.0.0/24"), rset("fd00::/120")), (ip_address("fd00::20"),), "c1", "eth0")
    assert caught.value.msg == (
        "failed to allocate for range 1: requested IP address fd00::20 is not available in range set fd00::1-fd00::ff")
    assert list(store.held) == [ip_address("fd00::20")]  # the v4 address of this call was released


def test_long_taken_runs_are_skipped_in_batches():
    rs = rset("10.1.0.0/20")
    held = {str(ip_address(int(ip_address("10.1.0.2")) + i)): ("x", "eth0") for i in range(1000)}
    store = MemoryStore(held=held)
    assert allocate_n(store, rs, 1) == ["10.1.3.234"]  # .2 + 1000
