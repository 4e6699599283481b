"""bridge_config.load_config: every key's default, value rules and conflicts (no root, no netlink)."""

import json

import pytest

from cni_rkt.errors import CNIError, ErrorCode
from cni_rkt.plugins.bridge_config import BridgeConfig, load_config, load_delete_config
from cni_rkt.plugins.bridge_result import gateway_for, plan_addresses, pod_routes
from cni_rkt.protocol.result import DNS, IPConfig, Result, Route

IPAM = {"type": "host-local", "subnet": "10.22.0.0/16"}


def load(cni_args: str = "", version: str = "1.0.0", **keys) -> BridgeConfig:
    config = {"cniVersion": version, "name": "net1", "type": "bridge", "ipam": IPAM, **keys}
    return load_config(config, cni_args, version)


def test_defaults_are_the_references():
    conf = load()
    assert conf.bridge == "cni0"
    assert (conf.is_gateway, conf.is_default_gateway, conf.force_address, conf.ip_masq) == (False,) * 4
    assert (conf.mtu, conf.vlan, conf.vlan_trunk) == (0, 0, ())
    assert conf.preserve_default_vlan is True
    assert (conf.hairpin_mode, conf.promisc_mode, conf.enable_dad, conf.port_isolation) == (False,) * 4
    assert conf.ip_masq_backend is None and conf.mac == "" and conf.dns is None
    assert conf.is_layer3 and conf.ipam_type == "host-local"


@pytest.mark.parametrize(
    "keys, field, expected",
    [
        ({"bridge": "mybridge"}, "bridge", "mybridge"),
        ({"bridge": "a" * 15}, "bridge", "a" * 15),
        ({"isDefaultGateway": True}, "is_gateway", True),
        ({"mtu": 68}, "mtu", 68),
        ({"mtu": 65535}, "mtu", 65535),
        ({"vlan": 4094}, "vlan", 4094),
        ({"vlanTrunk": [{"id": 5}, {"minID": 10, "maxID": 12}, {"id": 11}]}, "vlan_trunk", (5, 10, 11, 12)),
        ({"preserveDefaultVlan": False}, "preserve_default_vlan", False),
        ({"ipMasq": True, "ipMasqBackend": "nftables"}, "ip_masq_backend", "nftables"),
        ({"ipMasq": True, "ipMasqBackend": ""}, "ip_masq_backend", None),  # the default (README)
        ({"addIf": "true"}, "bridge", "cni0"),  # the old guide's unknown key is ignored
        ({"ipam": {}}, "ipam_type", ""),
        ({"ipam": None}, "ipam_type", ""),
        ({"dns": {"nameservers": ["10.0.0.10"]}}, "dns", DNS(nameservers=("10.0.0.10",))),
        ({"dns": {}}, "dns", None),
        ({"disableContainerInterface": True, "ipam": {}}, "disable_container_interface", True),
        ({"runtimeConfig": {"mac": "02:00:00:00:00:AA"}}, "mac", "02:00:00:00:00:aa"),
    ],
)
def test_values(keys, field, expected):
    assert getattr(load(**keys), field) == expected


def test_fourteen_characters_of_fifteen_bytes_make_a_bridge_name():
    assert load(bridge="abcdefghijklm\u00e9").bridge == "abcdefghijklm\u00e9"


def test_a_bridge_name_with_a_separator_control_is_taken_as_the_kernel_takes_it():
    """U+001C..U+001F are no whitespace to Go or to the kernel's name check; a tab is."""
    assert load(bridge="br\x1c0").bridge == "br\x1c0"
    with pytest.raises(CNIError):
        load(bridge="br\t0")


@pytest.mark.parametrize("keys", [{"preserveDefaultVlan": None}, {"args": None}, {"runtimeConfig": None}, {"args": {"cni": None}}])
def test_null_is_the_default_as_in_go(keys):
    conf = load(**keys)
    assert conf.preserve_default_vlan is True and conf.mac == ""


def test_keys_in_any_case_are_read_as_go_reads_them():
    conf = load(**{"Bridge": "br9", "MTU": 1400, "ipmasq": True, "IsDefaultGateway": True, "VLANTRUNK": [{"ID": 5}],
                   "Args": {"CNI": {"MAC": "02:00:00:00:00:bb"}}})
    assert (conf.bridge, conf.mtu, conf.ip_masq, conf.is_gateway, conf.vlan_trunk) == ("br9", 1400, True, True, (5,))
    assert conf.mac == "02:00:00:00:00:bb"
    assert load(mtu=1400, MTU=1300).mtu == 1300  # the later spelling wins, as in Go
    assert load_delete_config({"name": "net1", "IPAM": {"Type": "host-local"}, "IPMASQ": True}, "1.0.0").ip_masq


def test_del_reads_only_what_it_removes():
    config = {"name": "net1", "ipam": IPAM, "ipMasq": True, "macspoofchk": True, "mtu": 70000,
              "bridge": "b" * 16, "runtimeConfig": {"mac": "zz"}, "hairpinMode": True, "promiscMode": True}
    conf = load_delete_config(config, "1.0.0")
    assert (conf.network, conf.ipam_type, conf.ip_masq, conf.mac_spoof_check) == ("net1", "host-local", True, True)
    with pytest.raises(CNIError) as caught:
        load_delete_config({**config, "ipam": "host-local"}, "1.0.0")
    assert caught.value.details == "ipam"


def test_layer2_only_without_ipam_key():
    config = {"cniVersion": "0.3.1", "name": "l2", "type": "bridge"}
    assert load_config(config, "", "0.3.1").is_layer3 is False


@pytest.mark.parametrize(
    "cni_args, keys, expected",
    [
        ("MAC=02:00:00:00:00:01", {}, "02:00:00:00:00:01"),
        ("IgnoreUnknown=1;K8S_POD_NAME=x;MAC=02:00:00:00:00:01", {}, "02:00:00:00:00:01"),
        ("MAC=02:00:00:00:00:01", {"args": {"cni": {"mac": "02:00:00:00:00:02"}}}, "02:00:00:00:00:02"),
        (
            "MAC=02:00:00:00:00:01",
            {"args": {"cni": {"mac": "02:00:00:00:00:02"}}, "runtimeConfig": {"mac": "02:00:00:00:00:03"}},
            "02:00:00:00:00:03",
        ),
        ("IP=10.22.0.9", {}, ""),  # IP= is for the IPAM delegate, not an unknown key
        # every form Go's net.ParseMAC takes, as the kernel would print it
        ("", {"runtimeConfig": {"mac": "02-00-00-00-00-AA"}}, "02:00:00:00:00:aa"),
        ("", {"args": {"cni": {"mac": "0200.0000.00bb"}}}, "02:00:00:00:00:bb"),
        # as in Go, a source that a later one overrides is not read as an address
        ("IgnoreUnknown=1;MAC=zz", {"runtimeConfig": {"mac": "02:00:00:00:00:03"}}, "02:00:00:00:00:03"),
        ("", {"args": {"cni": {"mac": "zz"}}, "runtimeConfig": {"mac": "02:00:00:00:00:03"}}, "02:00:00:00:00:03"),
    ],
)
def test_mac_precedence_cni_args_then_args_then_runtime_config(cni_args, keys, expected):
    assert load(cni_args, **keys).mac == expected


@pytest.mark.parametrize("written", ["02-42-AC-11-00-02", "0242.ac11.0002", "02:42:ac:11:00:02"])
@pytest.mark.parametrize("source", ["CNI_ARGS", "args", "runtimeConfig"])
def test_a_mac_in_any_form_go_parses_is_taken(written, source):
    # Go's bridge hands the MAC to net.ParseMAC, which reads the hyphen and dot forms too.
    keys = {"args": {"args": {"cni": {"mac": written}}}, "runtimeConfig": {"runtimeConfig": {"mac": written}}}
    conf = load(f"MAC={written}") if source == "CNI_ARGS" else load("", **keys[source])
    assert conf.mac == "02:42:ac:11:00:02"


@pytest.mark.parametrize("mac", ["02-42-ac:11-00-02", "0242.ac11.00", "02:42:ac:11:00:02\n", "0242ac110002"])
def test_a_mac_go_cannot_parse_is_refused(mac):
    with pytest.raises(CNIError) as caught:
        load("", runtimeConfig={"mac": mac})
    assert (caught.value.code, caught.value.details) == (ErrorCode.INVALID_NETWORK_CONFIG, "runtimeConfig.mac")


@pytest.mark.parametrize(
    "keys, code, key",
    [
        ({"bridge": "b" * 16}, ErrorCode.INVALID_NETWORK_CONFIG, "bridge"),
        ({"bridge": ""}, ErrorCode.INVALID_NETWORK_CONFIG, "bridge"),
        ({"bridge": "br/0"}, ErrorCode.INVALID_NETWORK_CONFIG, "bridge"),
        ({"bridge": 7}, ErrorCode.INVALID_NETWORK_CONFIG, "bridge"),
        # the kernel takes a % as a name template (br%d becomes br0), counts bytes not
        # characters, stops at a NUL, and netlink cannot carry a lone surrogate
        ({"bridge": "br%d"}, ErrorCode.INVALID_NETWORK_CONFIG, "bridge"),
        ({"bridge": "abcdefghijklmn\u00e9"}, ErrorCode.INVALID_NETWORK_CONFIG, "bridge"),
        ({"bridge": "br\x00x"}, ErrorCode.INVALID_NETWORK_CONFIG, "bridge"),
        ({"bridge": "br\ud800"}, ErrorCode.INVALID_NETWORK_CONFIG, "bridge"),
        ({"args": "x"}, ErrorCode.INVALID_NETWORK_CONFIG, "args"),
        ({"args": {"cni": [{"mac": "02:00:00:00:00:01"}]}}, ErrorCode.INVALID_NETWORK_CONFIG, "args.cni"),
        ({"runtimeConfig": [{"mac": "02:00:00:00:00:01"}]}, ErrorCode.INVALID_NETWORK_CONFIG, "runtimeConfig"),
        ({"vlan": -1}, ErrorCode.INVALID_NETWORK_CONFIG, "vlan"),
        ({"vlan": 4095}, ErrorCode.INVALID_NETWORK_CONFIG, "vlan"),
        ({"vlan": "10"}, ErrorCode.INVALID_NETWORK_CONFIG, "vlan"),
        ({"vlanTrunk": [{"id": 0}]}, ErrorCode.INVALID_NETWORK_CONFIG, "vlanTrunk.id"),
        ({"vlanTrunk": [{"id": 4095}]}, ErrorCode.INVALID_NETWORK_CONFIG, "vlanTrunk.id"),
        ({"vlanTrunk": [{"minID": 10}]}, ErrorCode.INVALID_NETWORK_CONFIG, "vlanTrunk"),
        ({"vlanTrunk": [{"maxID": 10}]}, ErrorCode.INVALID_NETWORK_CONFIG, "vlanTrunk"),
        ({"vlanTrunk": [{"minID": 20, "maxID": 10}]}, ErrorCode.INVALID_NETWORK_CONFIG, "vlanTrunk"),
        ({"vlanTrunk": {"id": 3}}, ErrorCode.INVALID_NETWORK_CONFIG, "vlanTrunk"),
        ({"vlan": 5, "vlanTrunk": [{"id": 6}]}, ErrorCode.INVALID_NETWORK_CONFIG, "vlanTrunk"),
        ({"hairpinMode": True, "promiscMode": True}, ErrorCode.INVALID_NETWORK_CONFIG, "hairpinMode"),
        ({"disableContainerInterface": True}, ErrorCode.INVALID_NETWORK_CONFIG, "ipam"),
        ({"mtu": 67}, ErrorCode.INVALID_NETWORK_CONFIG, "mtu"),
        ({"mtu": 65536}, ErrorCode.INVALID_NETWORK_CONFIG, "mtu"),
        ({"mtu": 70000}, ErrorCode.INVALID_NETWORK_CONFIG, "mtu"),
        ({"mtu": "1500"}, ErrorCode.INVALID_NETWORK_CONFIG, "mtu"),
        ({"isGateway": "true"}, ErrorCode.INVALID_NETWORK_CONFIG, "isGateway"),
        ({"ipMasqBackend": "pf"}, ErrorCode.INVALID_NETWORK_CONFIG, "ipMasqBackend"),
        ({"ipam": "host-local"}, ErrorCode.INVALID_NETWORK_CONFIG, "ipam"),
        ({"runtimeConfig": {"mac": "not-a-mac"}}, ErrorCode.INVALID_NETWORK_CONFIG, "runtimeConfig.mac"),
        ({"args": {"cni": {"mac": "02:00:00:00:00"}}}, ErrorCode.INVALID_NETWORK_CONFIG, "args.cni.mac"),
        ({"runtimeConfig": {"mac": "02:00:00:00:00:00:00:01"}}, ErrorCode.INVALID_NETWORK_CONFIG, "runtimeConfig.mac"),
        ({"args": {"cni": {"mac": 5}}, "runtimeConfig": {"mac": "02:00:00:00:00:01"}}, ErrorCode.INVALID_NETWORK_CONFIG,
         "args.cni.mac"),
        ({"dns": {"nameservers": "10.0.0.10"}}, ErrorCode.INVALID_NETWORK_CONFIG, "dns.nameservers"),
    ],
)
def test_bad_config_names_key_and_value(keys, code, key):
    with pytest.raises(CNIError) as caught:
        load(**keys)
    assert caught.value.code == code
    assert caught.value.details == key
    value = next(iter(keys.values())) if len(keys) == 1 else None
    if isinstance(value, (int, str)) and not isinstance(value, bool):
        assert str(value) in caught.value.msg or json.dumps(value) in caught.value.msg  # NUL, surrogate: escaped


@pytest.mark.parametrize("cni_args", ["MAC=zz:00:00:00:00:01", "FOO=1"])
def test_bad_cni_args(cni_args):
    with pytest.raises(CNIError) as caught:
        load(cni_args)
    assert caught.value.code in (ErrorCode.INVALID_NETWORK_CONFIG, ErrorCode.INVALID_ENVIRONMENT)


@pytest.mark.parametrize("version", ["0.1.0", "0.2.0", ""])
def test_layer2_only_with_a_legacy_version_fails_up_front(version):
    config = {"name": "l2", "type": "bridge", "ipam": {}}
    with pytest.raises(CNIError) as caught:
        load_config(config, "", version or "0.1.0")
    assert caught.value.code == ErrorCode.INVALID_NETWORK_CONFIG
    assert "ipam" in caught.value.details


# --- the pure address plan ----------------------------------------------------------


def test_gateway_is_first_host_of_the_network():
    assert gateway_for("10.22.3.4/16") == "10.22.0.1"
    assert gateway_for("fd00:1::5/64") == "fd00:1::1"


def test_plan_fills_gateway_and_interface_and_bridge_address_when_is_gateway():
    ipam = Result(ips=(IPConfig("10.22.0.5/16"),), routes=(Route("0.0.0.0/0"),))
    plan = plan_addresses(ipam, load(isGateway=True))
    assert plan.ips == (IPConfig("10.22.0.5/16", "10.22.0.1", 2),)
    assert plan.bridge_addresses == ("10.22.0.1/16",)
    assert plan.routes == (Route("0.0.0.0/0"),)
    assert [(r.dst, r.gw) for r in pod_routes(plan)] == [("0.0.0.0/0", "10.22.0.1")]


def test_an_ipam_gateway_of_the_other_family_is_refused_by_is_gateway_and_routes_no_route():
    ipam = Result(ips=(IPConfig("fd01::2/120", "10.9.0.1"),))
    with pytest.raises(CNIError) as caught:
        plan_addresses(ipam, load(isGateway=True))
    assert (caught.value.code, caught.value.msg) == (
        ErrorCode.INVALID_NETWORK_CONFIG, "isGateway: IPAM gateway 10.9.0.1 is not of the family of fd01::2/120")
    plan = plan_addresses(Result(ips=ipam.ips, routes=(Route("fd09::/64"),)), load())
    assert plan.ips == (IPConfig("fd01::2/120", "10.9.0.1", 2),)
    assert [(r.dst, r.gw) for r in pod_routes(plan)] == [("fd09::/64", "")]  # Go's v6 route has no v4 gateway


def test_plan_without_is_gateway_keeps_ipam_gateway_and_puts_nothing_on_the_bridge():
    ipam = Result(ips=(IPConfig("10.22.0.5/16"),))
    plan = plan_addresses(ipam, load())
    assert plan.ips == (IPConfig("10.22.0.5/16", "", 2),) and plan.bridge_addresses == ()


def test_default_gateway_adds_one_default_route_per_family_unless_ipam_has_one():
    ipam = Result(ips=(IPConfig("10.22.0.5/16"), IPConfig("fd00::5/64")), routes=(Route("::/0", "fd00::9"),))
    plan = plan_addresses(ipam, load(isDefaultGateway=True))
    assert plan.routes == (Route("::/0", "fd00::9"), Route("0.0.0.0/0", "10.22.0.1"))
    assert plan.bridge_addresses == ("10.22.0.1/16", "fd00::1/64")


# --- the VLAN's gateway port ----------------------------------------------------------


@pytest.mark.parametrize(
    "keys, expected",
    [
        ({"bridge": "br0", "vlan": 100, "isGateway": True}, "br0.100"),
        ({"bridge": "br0", "vlan": 100, "isDefaultGateway": True}, "br0.100"),
        ({"bridge": "br0", "vlan": 100}, ""),
        ({"bridge": "br0", "isGateway": True}, ""),
        ({"bridge": "br0", "vlan": 100, "isGateway": True, "ipam": {}}, ""),
    ],
)
def test_vlan_gateway_port_only_for_a_gateway_on_a_vlan(keys, expected):
    assert load(**keys).vlan_gateway_port == expected


def test_vlan_gateway_port_name_too_long_is_refused_naming_the_bridge():
    with pytest.raises(CNIError) as caught:
        load(bridge="b" * 12, vlan=4094, isGateway=True)
    assert (caught.value.code, caught.value.details) == (ErrorCode.INVALID_NETWORK_CONFIG, "bridge")
    assert '"bbbbbbbbbbbb.4094"' in caught.value.msg
    assert load(bridge="b" * 12, vlan=4094).vlan == 4094  # no gateway, no port, no limit
    with pytest.raises(CNIError) as caught:  # 15 characters but 16 bytes: the kernel would refuse it
        load(bridge="abcdefghij\u00e9", vlan=100, isGateway=True)
    assert caught.value.details == "bridge"
