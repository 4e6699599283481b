"""Range canonicalization and range-set arithmetic, against the reference's rules."""

from ipaddress import ip_address

import pytest

from cni_rkt.ipam.ranges import RangeError, canonical_range, canonical_range_set, parse_cidr, parse_ip


@pytest.mark.parametrize(
    "args, start, end, gateway",
    [
        (("10.1.0.0/24",), "10.1.0.1", "10.1.0.254", "10.1.0.1"),  # defaults: network+1 .. broadcast-1
        (("10.1.0.0/30",), "10.1.0.1", "10.1.0.2", "10.1.0.1"),
        (("10.1.0.0/24", "10.1.0.10", "10.1.0.20", "10.1.0.254"), "10.1.0.10", "10.1.0.20", "10.1.0.254"),
        (("fd00::/120",), "fd00::1", "fd00::ff", "fd00::1"),  # IPv6 keeps the all-ones address
        (("fd00::/64", "fd00::0:10"), "fd00::10", "fd00::ffff:ffff:ffff:ffff", "fd00::1"),
        (("10.1.0.0/24", None, None, "192.0.2.1"), "10.1.0.1", "10.1.0.254", "192.0.2.1"),  # not checked, as Go
    ],
)
def test_canonical_range_fills_the_reference_defaults(args, start, end, gateway):
    r = canonical_range(*args)
    assert (str(r.start), str(r.end), str(r.gateway)) == (start, end, gateway)


@pytest.mark.parametrize(
    "args, key, message",
    [
        (("nonsense",), "subnet", "invalid CIDR address: nonsense"),
        (("10.1.0.0",), "subnet", "invalid CIDR address: 10.1.0.0"),
        (("10.1.0.0/33",), "subnet", "invalid CIDR address: 10.1.0.0/33"),
        (("10.1.0.0/\u00b2",), "subnet", "invalid CIDR address: 10.1.0.0/\u00b2"),  # a digit, not an ASCII one
        (("10.1.0.0/\u0662\u0664",), "subnet", "invalid CIDR address: 10.1.0.0/\u0662\u0664"),
        (("10.1.0.5/24",), "subnet",
         "Network has host bits set. For a subnet mask of length 24 the network address is 10.1.0.0"),
        (("10.1.0.0/31",), "subnet", "Network 10.1.0.0/31 too small to allocate from"),
        (("10.1.0.0/32",), "subnet", "Network 10.1.0.0/32 too small to allocate from"),
        (("fd00::/127",), "subnet", "Network fd00::/127 too small to allocate from"),
        (("fd00::/128",), "subnet", "Network fd00::/128 too small to allocate from"),
        (("10.1.0.0/24", "10.1.1.5"), "rangeStart", "rangeStart 10.1.1.5 not in network 10.1.0.0/24"),
        (("10.1.0.0/24", None, "10.1.1.10"), "rangeEnd", "rangeEnd 10.1.1.10 not in network 10.1.0.0/24"),
        (("10.1.0.0/24", "fd00::1"), "rangeStart", "rangeStart fd00::1 not in network 10.1.0.0/24"),
        (("10.1.0.0/24", "10.1.0.50", "10.1.0.10"), "rangeStart", "rangeStart 10.1.0.50 is after rangeEnd 10.1.0.10"),
        (("10.1.0.0/24", "x"), "rangeStart", "invalid IP address: x"),
        (("10.1.0.0/24", None, None, "x"), "gateway", "invalid IP address: x"),
    ],
)
def test_canonical_range_refuses_what_the_reference_refuses(args, key, message):
    with pytest.raises(RangeError) as caught:
        canonical_range(*args)
    assert (caught.value.key, str(caught.value)) == (key, message)


def test_an_explicit_all_zeros_address_is_a_value_not_the_default():
    # Go keeps any non-nil IP: 0.0.0.0 stays the gateway, and as rangeStart it is out of the subnet.
    assert str(canonical_range("10.1.0.0/24", None, None, "0.0.0.0").gateway) == "0.0.0.0"
    assert str(canonical_range("fd00::/120", None, None, "::").gateway) == "::"
    with pytest.raises(RangeError) as caught:
        canonical_range("10.1.0.0/24", "0.0.0.0")
    assert str(caught.value) == "rangeStart 0.0.0.0 not in network 10.1.0.0/24"


def test_parse_ip_is_strict_and_unmaps_ipv4_in_ipv6():
    assert parse_ip("::ffff:10.1.0.5") == ip_address("10.1.0.5")
    for bad in ("1.2", "010.1.0.5", " 10.1.0.5", "10.1.0.5/24", "", "fe80::1%eth0", "0x0a.0.0.1", "1.2.3.4\x00"):
        with pytest.raises(ValueError):
            parse_ip(bad)
    assert parse_cidr("10.1.0.7/24") == (ip_address("10.1.0.7"), 24)  # host bits are the caller's business


def test_contains_respects_start_end_and_family():
    r = canonical_range("10.1.0.0/24", "10.1.0.10", "10.1.0.20")
    assert r.contains(ip_address("10.1.0.10")) and r.contains(ip_address("10.1.0.20"))
    assert not r.contains(ip_address("10.1.0.9")) and not r.contains(ip_address("10.1.0.21"))
    assert not r.contains(ip_address("::a01:a"))


def test_size_leaves_out_the_gateway_only_when_inside_the_range():
    assert canonical_range("10.1.0.0/29").size() == 5  # .1-.6, gateway .1
    assert canonical_range("10.1.0.0/29", "10.1.0.2").size() == 5  # .2-.6
    assert canonical_range("10.1.0.0/29", "10.1.0.2", None, "10.1.0.6").size() == 4


@pytest.mark.parametrize(
    "subnets, message",
    [
        ([], "empty range set"),
        (["10.1.0.0/24", "fd00::/64"], "mixed address families"),
        (["10.1.0.0/24", "10.1.0.0/16"], "subnets 10.1.0.1-10.1.0.254 and 10.1.0.1-10.1.255.254 overlap"),
    ],
)
def test_range_set_rules(subnets, message):
    with pytest.raises(ValueError, match=f"^{message}$"):
        canonical_range_set([canonical_range(s) for s in subnets])


def test_range_set_overlap_and_string():
    a = canonical_range_set([canonical_range("10.1.0.0/24"), canonical_range("10.2.0.0/24")])
    b = canonical_range_set([canonical_range("10.2.0.0/24", "10.2.0.100")])
    c = canonical_range_set([canonical_range("fd00::/120")])
    assert a.overlaps(b) and b.overlaps(a)
    assert not a.overlaps(c)
    assert str(a) == "10.1.0.1-10.1.0.254,10.2.0.1-10.2.0.254"
    assert a.range_for(ip_address("10.2.0.7")) is a.ranges[1]
    assert a.range_for(ip_address("10.3.0.7")) is None
