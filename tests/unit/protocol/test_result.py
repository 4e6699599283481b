"""One result model, printed in every spec version with the reference's conversion rules."""

import json

import pytest

from cni_rkt.errors import CNIError
from cni_rkt.protocol.result import (DNS, Interface, IPConfig, Result, Route, parse_result,
                                     prev_result, render_result)
from cni_rkt.protocol.spec import SUPPORTED_VERSIONS

BRIDGE_RESULT = Result(
    interfaces=(Interface("mybridge", "aa:00:00:00:00:01"), Interface("veth1234abcd", "aa:00:00:00:00:02"),
                Interface("eth0", "aa:00:00:00:00:03", sandbox="/var/run/netns/p")),
    ips=(IPConfig("10.22.0.2/16", "10.22.0.1", 2), IPConfig("fd00::2/64", "fd00::1", 2),
         IPConfig("10.23.0.2/16", "10.23.0.1", 2)),
    routes=(Route("0.0.0.0/0"), Route("::/0", "fd00::1"), Route("192.168.0.0/16", "10.22.0.9")),
    dns=DNS(nameservers=("10.0.0.10",), search=("svc.local",)),
)


def printed(result, version):
    return json.loads(render_result(result, version))


def test_go_byte_format_four_space_indent_no_trailing_newline():
    out = render_result(Result(ips=(IPConfig("10.0.0.2/24"),)), "1.0.0")
    assert out == b'{\n    "cniVersion": "1.0.0",\n    "ips": [\n        {\n            "address": "10.0.0.2/24"\n        }\n    ],\n    "dns": {}\n}'


def test_1_0_0_shape_and_key_order():
    out = printed(BRIDGE_RESULT, "1.0.0")
    assert list(out) == ["cniVersion", "interfaces", "ips", "routes", "dns"]
    assert out["ips"][0] == {"interface": 2, "address": "10.22.0.2/16", "gateway": "10.22.0.1"}
    assert list(out["ips"][0]) == ["interface", "address", "gateway"]
    assert out["interfaces"][2] == {"name": "eth0", "mac": "aa:00:00:00:00:03", "sandbox": "/var/run/netns/p"}


@pytest.mark.parametrize("version", ["0.3.0", "0.3.1", "0.4.0"])
def test_0_3_and_0_4_carry_ip_version(version):
    out = printed(BRIDGE_RESULT, version)
    assert [ip["version"] for ip in out["ips"]] == ["4", "6", "4"]
    assert list(out["ips"][0]) == ["version", "interface", "address", "gateway"]


@pytest.mark.parametrize("version", ["0.1.0", "0.2.0"])
def test_legacy_shape_first_ip_per_family_and_routes_split(version):
    out = printed(BRIDGE_RESULT, version)
    assert out == {
        "cniVersion": version,
        "ip4": {"ip": "10.22.0.2/16", "gateway": "10.22.0.1",
                "routes": [{"dst": "0.0.0.0/0"}, {"dst": "192.168.0.0/16", "gw": "10.22.0.9"}]},
        "ip6": {"ip": "fd00::2/64", "gateway": "fd00::1", "routes": [{"dst": "::/0", "gw": "fd00::1"}]},
        "dns": {"nameservers": ["10.0.0.10"], "search": ["svc.local"]},
    }


def test_legacy_shape_without_any_ip_is_an_error():
    with pytest.raises(CNIError) as info:
        render_result(Result(interfaces=(Interface("br0"),)), "0.2.0")
    assert info.value.msg == "cannot convert: no valid IP addresses"


def test_1_1_fields_only_in_1_1():
    result = Result(interfaces=(Interface("eth0", mtu=1400),), ips=(IPConfig("10.0.0.2/24"),),
                    routes=(Route("10.1.0.0/16", mtu=1300, priority=5, table=100),))
    assert printed(result, "1.1.0")["routes"][0] == {"dst": "10.1.0.0/16", "mtu": 1300, "priority": 5, "table": 100}
    assert printed(result, "1.1.0")["interfaces"][0]["mtu"] == 1400
    assert printed(result, "1.0.0")["routes"][0] == {"dst": "10.1.0.0/16"}
    assert "mtu" not in printed(result, "1.0.0")["interfaces"][0]


@pytest.mark.parametrize("version", SUPPORTED_VERSIONS)
def test_round_trip_through_every_version(version):
    back = parse_result(printed(BRIDGE_RESULT, version), version)
    assert back.ips[0].address == "10.22.0.2/16" and back.ips[0].gateway == "10.22.0.1"
    assert Route("0.0.0.0/0") in back.routes
    assert back.dns == BRIDGE_RESULT.dns


def test_legacy_parse_flattens_routes_v4_first():
    legacy = {"cniVersion": "0.2.0", "ip4": {"ip": "10.0.0.2/24", "routes": [{"dst": "0.0.0.0/0"}]},
              "ip6": {"ip": "fd00::2/64", "routes": [{"dst": "::/0"}]}}
    back = parse_result(legacy, "0.2.0")
    assert [r.dst for r in back.routes] == ["0.0.0.0/0", "::/0"]
    assert [ip.address for ip in back.ips] == ["10.0.0.2/24", "fd00::2/64"]


def test_prev_result_without_version_is_read_at_the_config_version():
    config = {"prevResult": {"ip4": {"ip": "10.0.0.2/24"}}}
    assert prev_result(config, "0.2.0").ips[0].address == "10.0.0.2/24"
    assert prev_result({}, "1.0.0") is None


@pytest.mark.parametrize("result", [
    {"cniVersion": "1.0.0", "ips": "10.0.0.2/24"},
    {"cniVersion": "1.0.0", "ips": [{"address": "nonsense"}]},
    {"cniVersion": "1.0.0", "ips": [{"address": "10.0.0.2/24", "gateway": "10.0.0.300"}]},
    {"cniVersion": "1.0.0", "ips": [{"gateway": "10.0.0.1"}]},
    {"cniVersion": "1.0.0", "interfaces": [1], "dns": []},
    {"cniVersion": "0.2.0", "ip4": "10.0.0.2/24"},
    {"cniVersion": "0.2.0", "ip4": {"ip": 5}},
    {"cniVersion": 1.0},
])
def test_a_malformed_delegate_result_is_a_decoding_error(result):
    # what a broken delegate prints must become code 6, not an exception when printed later
    with pytest.raises(CNIError) as caught:
        parse_result(result, "1.0.0")
    assert caught.value.code == 6 and caught.value.msg.startswith("failed to parse result")


@pytest.mark.parametrize("result, names", [
    ({"cniVersion": "1.0.0", "ips": [{"address": "10.0.0.2/24"}, {"gateway": "10.0.0.1"}]}, 'ips[1] has no "address"'),
    ({"cniVersion": "1.0.0", "interfaces": ["eth0"]}, 'interfaces[0] must be a JSON object, got "eth0"'),
    ({"cniVersion": "1.0.0", "routes": {"dst": "0.0.0.0/0"}}, 'routes must be a list, got {"dst": "0.0.0.0/0"}'),
    ({"cniVersion": "1.0.0", "routes": [{"gw": "10.0.0.1"}]}, 'route without dst: {"gw": "10.0.0.1"}'),
    ({"cniVersion": "0.2.0", "ip4": {"gateway": "10.0.0.1"}}, 'ip4 has no "ip"'),
    ({"cniVersion": "1.0.0", "dns": "x"}, 'dns must be a JSON object, got "x"'),
    ({"cniVersion": "1.0.0", "dns": {"nameservers": "1.1.1.1"}}, 'dns.nameservers must be a list of strings, got "1.1.1.1"'),
    # fields of the wrong JSON type, which Go's decoder refuses (they used to reach the output)
    ({"cniVersion": "1.0.0", "interfaces": [{"name": 5}]}, "interfaces[0].name must be a string, got 5"),
    ({"cniVersion": "1.0.0", "interfaces": [{"name": "e", "mac": 7}]}, "interfaces[0].mac must be a string, got 7"),
    ({"cniVersion": "1.1.0", "interfaces": [{"name": "e", "mtu": "x"}]}, 'interfaces[0].mtu must be an integer, got "x"'),
    ({"cniVersion": "1.0.0", "ips": [{"address": "10.0.0.2/24", "interface": "0"}]},
     'ips[0].interface must be an integer, got "0"'),
    ({"cniVersion": "1.0.0", "routes": [{"dst": "0.0.0.0/0", "gw": 5}]}, "routes[0].gw must be a string, got 5"),
    ({"cniVersion": "1.1.0", "routes": [{"dst": "0.0.0.0/0", "table": True}]}, "routes[0].table must be an integer, got true"),
    ({"cniVersion": "0.4.0", "ips": [{"version": 4, "address": "10.0.0.2/24"}]}, "ips[0].version must be a string, got 4"),
    ({"cniVersion": "1.0.0", "dns": {"domain": ["a"]}}, 'dns.domain must be a string, got ["a"]'),
    ({"cniVersion": "0.2.0", "ip4": {"ip": "10.0.0.2/24", "routes": [{"dst": "0.0.0.0/0", "gw": 1}]}},
     "ip4.routes[0].gw must be a string, got 1"),
])
def test_a_broken_prev_result_is_named_down_to_the_field(result, names):
    """A runtime's CHECK or DEL with a prevResult it mangled: the message says what is wrong, where."""
    with pytest.raises(CNIError) as caught:
        prev_result({"prevResult": result}, "1.0.0")
    assert (caught.value.code, caught.value.msg) == (6, f"failed to parse prevResult: {names}")


def test_fields_of_spec_1_1_are_only_checked_in_a_1_1_result():
    """Debian's Go reference predates them and ignores them in older results: a wrong one is left out."""
    result = {"cniVersion": "1.0.0", "interfaces": [{"name": "e", "mtu": "x", "pciID": 3}],
              "routes": [{"dst": "0.0.0.0/0", "table": True, "mtu": 1400}]}
    parsed = parse_result(result, "1.0.0")
    assert (parsed.interfaces[0].mtu, parsed.interfaces[0].pci_id) == (0, "")
    assert (parsed.routes[0].table, parsed.routes[0].mtu) == (None, 1400)  # a good one is kept


def test_whole_floats_are_integers_in_a_prev_result_only():
    # Go re-encodes a prevResult from a map (1500.0 becomes 1500); a delegate's stdout it decodes directly
    result = {"cniVersion": "1.1.0", "interfaces": [{"name": "e", "mtu": 1500.0}],
              "ips": [{"address": "10.0.0.2/24", "interface": 0.0}]}
    parsed = prev_result({"prevResult": result}, "1.1.0")
    assert (parsed.interfaces[0].mtu, parsed.ips[0].interface) == (1500, 0)
    assert type(parsed.ips[0].interface) is int
    with pytest.raises(CNIError) as caught:
        parse_result(result, "1.1.0")
    assert caught.value.msg == "failed to parse result: interfaces[0].mtu must be an integer, got 1500.0"


@pytest.mark.parametrize("prev", [False, 0, "", []])
def test_a_prev_result_that_is_not_an_object_is_not_taken_for_a_missing_one(prev):
    # Go's decoder refuses it (NetConf.prevResult is a map); "Required prevResult missing" misled
    with pytest.raises(CNIError) as caught:
        prev_result({"prevResult": prev}, "1.0.0")
    assert (caught.value.code, caught.value.msg) == (6, "failed to parse prevResult: not a JSON object")


@pytest.mark.parametrize("version", ["0.2.0", "1.0.0"])
def test_result_keys_in_other_cases_are_read_as_go_reads_them(version):
    # Go decodes a (prev)result into structs, so "IPs", "Address" or "DNS" are ips, address, dns
    for_version = {"CNIVersion": version, "IP4": {"IP": "10.0.0.2/24", "Gateway": "10.0.0.1", "ROUTES": [{"Dst": "0.0.0.0/0"}]}}
    if version == "1.0.0":
        for_version = {"CNIVersion": version, "Interfaces": [{"Name": "eth0", "Sandbox": "/var/run/netns/p"}],
                       "IPs": [{"Address": "10.0.0.2/24", "GATEWAY": "10.0.0.1", "Interface": 0}],
                       "Routes": [{"DST": "0.0.0.0/0", "GW": "10.0.0.1"}]}
    for_version["DNS"] = {"Nameservers": ["1.1.1.1"]}
    lower = json.loads(json.dumps(for_version).lower().replace("cniversion", "cniVersion"))
    assert prev_result({"prevResult": for_version}, version) == prev_result({"prevResult": lower}, version)
    assert prev_result({"prevResult": for_version}, version).ips[0].address == "10.0.0.2/24"
