"""The delegate config flannel hands to bridge, side by side with the reference's.

The reference flannel binary is not packaged by Debian, so each row below is the delegate
the reference builds for that input, as documented in
../shared/reference/cni-spec-and-reference-plugins.md §2.3 ("Delegate construction (ADD)"),
which was read from flannel-io/cni-plugin flannel_linux.go (doCmdAdd, getDelegateIPAM).
"""

import json

import pytest

from cni_rkt.errors import CNIError
from cni_rkt.flannel.config import DEFAULT_DATA_DIR, load_flannel_config
from cni_rkt.flannel.delegate_config import build_delegate_config, render_delegate_config
from cni_rkt.flannel.subnet_env import DEFAULT_SUBNET_FILE, parse_subnet_env
from cni_rkt.protocol.invocation import decode_config

GUIDE_ENV = "FLANNEL_NETWORK=10.1.0.0/16\nFLANNEL_SUBNET=10.1.17.1/24\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=true\n"
DUAL_ENV = (
    "FLANNEL_NETWORK=10.1.0.0/16,10.2.0.0/16\nFLANNEL_SUBNET=10.1.17.1/24\n"
    "FLANNEL_IPV6_NETWORK=fd00:10::/56\nFLANNEL_IPV6_SUBNET=fd00:10:0:11::1/64\n"
    "FLANNEL_MTU=1400\nFLANNEL_IPMASQ=false\n"
)
SEED = {"name": "rkt.kubernetes.io", "type": "flannel", "delegate": {"isDefaultGateway": True}}
GUIDE_IPAM = {"type": "host-local", "ranges": [[{"subnet": "10.1.17.0/24"}]], "routes": [{"dst": "10.1.0.0/16"}]}

# (case, flannel config, subnet.env, the reference's delegate, what of §2.3 the row shows)
REFERENCE_DELEGATES = [
    (
        "seed example (rkt guide net.d file)",
        SEED,
        GUIDE_ENV,
        {
            "name": "rkt.kubernetes.io", "type": "bridge", "isDefaultGateway": True,
            "ipMasq": False, "mtu": 1450, "isGateway": True, "ipam": GUIDE_IPAM,
        },
        "name := network; type bridge; ipMasq = !FLANNEL_IPMASQ; mtu = FLANNEL_MTU; isGateway for bridge; "
        "ipam type host-local, ranges from FLANNEL_SUBNET, a route to FLANNEL_NETWORK; no cniVersion copied",
    ),
    (
        "flanneld does not masquerade, cniVersion set",
        {"cniVersion": "0.3.1", "name": "cbr", "type": "flannel"},
        GUIDE_ENV.replace("IPMASQ=true", "IPMASQ=false"),
        {"cniVersion": "0.3.1", "name": "cbr", "type": "bridge", "ipMasq": True, "mtu": 1450, "isGateway": True,
         "ipam": GUIDE_IPAM},
        "ipMasq = !false; cniVersion copied into the delegate",
    ),
    (
        "delegate keys win over the defaults",
        {"cniVersion": "1.0.0", "name": "cbr", "type": "flannel",
         "delegate": {"bridge": "cni0", "ipMasq": True, "mtu": 1300, "isGateway": False, "hairpinMode": True,
                      "cniVersion": "0.4.0"}},
        GUIDE_ENV,
        {"cniVersion": "1.0.0", "name": "cbr", "type": "bridge", "bridge": "cni0", "ipMasq": True, "mtu": 1300,
         "isGateway": False, "hairpinMode": True, "ipam": GUIDE_IPAM},
        "defaults only fill absent keys; the flannel cniVersion overrides the delegate's",
    ),
    (
        "another delegate type gets no isGateway",
        {"name": "ipv", "type": "flannel", "delegate": {"type": "ipvlan", "master": "eth0"}},
        GUIDE_ENV,
        {"name": "ipv", "type": "ipvlan", "master": "eth0", "ipMasq": False, "mtu": 1450, "ipam": GUIDE_IPAM},
        "isGateway is defaulted for type bridge only",
    ),
    (
        "plugin ipam is the base: ranges overwritten, routes extended",
        {"name": "cbr", "type": "flannel",
         "ipam": {"type": "host-local", "dataDir": "/var/lib/x", "ranges": [[{"subnet": "192.168.0.0/24"}]],
                  "routes": [{"dst": "0.0.0.0/0", "gw": "10.1.17.254"}]}},
        GUIDE_ENV,
        {"name": "cbr", "type": "bridge", "ipMasq": False, "mtu": 1450, "isGateway": True,
         "ipam": {"type": "host-local", "dataDir": "/var/lib/x", "ranges": [[{"subnet": "10.1.17.0/24"}]],
                  "routes": [{"dst": "0.0.0.0/0", "gw": "10.1.17.254"}, {"dst": "10.1.0.0/16"}]}},
        "ipam from the plugin's ipam; ranges overwritten; routes = ipam.routes + one per network",
    ),
    (
        "plugin ipam of another type keeps its type",
        {"name": "cbr", "type": "flannel", "ipam": {"type": "static-like", "foo": 1}},
        GUIDE_ENV,
        {"name": "cbr", "type": "bridge", "ipMasq": False, "mtu": 1450, "isGateway": True,
         "ipam": {"type": "static-like", "foo": 1, "ranges": [[{"subnet": "10.1.17.0/24"}]],
                  "routes": [{"dst": "10.1.0.0/16"}]}},
        "ipam type defaults to host-local only when absent",
    ),
    (
        "runtimeConfig passed through",
        {"name": "cbr", "type": "flannel", "runtimeConfig": {"portMappings": [{"hostPort": 80}]}},
        GUIDE_ENV,
        {"name": "cbr", "type": "bridge", "ipMasq": False, "mtu": 1450, "isGateway": True, "ipam": GUIDE_IPAM,
         "runtimeConfig": {"portMappings": [{"hostPort": 80}]}},
        "runtimeConfig copied to delegate.runtimeConfig",
    ),
    (
        "dual stack, two IPv4 networks",
        {"name": "cbr", "type": "flannel"},
        DUAL_ENV,
        {"name": "cbr", "type": "bridge", "ipMasq": True, "mtu": 1400, "isGateway": True,
         "ipam": {"type": "host-local",
                  "ranges": [[{"subnet": "10.1.17.0/24"}], [{"subnet": "fd00:10:0:11::/64"}]],
                  "routes": [{"dst": "10.1.0.0/16"}, {"dst": "10.2.0.0/16"}, {"dst": "fd00:10::/56"}]}},
        "ranges per family present; a route to every FLANNEL_NETWORK and FLANNEL_IPV6_NETWORK",
    ),
]


def build(config: dict, env_text: str) -> dict:
    return build_delegate_config(load_flannel_config(config), parse_subnet_env(env_text))


@pytest.mark.parametrize(
    "case, config, env, expected, shows", REFERENCE_DELEGATES, ids=[row[0] for row in REFERENCE_DELEGATES]
)
def test_delegate_matches_the_reference(case, config, env, expected, shows):
    delegate = build(config, env)
    assert json.loads(render_delegate_config(delegate)) == expected, shows


def test_seed_example_bytes_are_what_go_json_marshal_writes():
    # Go marshals the delegate map with sorted keys and no spaces; the routes are Go structs.
    assert render_delegate_config(build(SEED, GUIDE_ENV)) == (
        b'{"ipMasq":false,"ipam":{"ranges":[[{"subnet":"10.1.17.0/24"}]],"routes":[{"dst":"10.1.0.0/16"}],'
        b'"type":"host-local"},"isDefaultGateway":true,"isGateway":true,"mtu":1450,"name":"rkt.kubernetes.io",'
        b'"type":"bridge"}'
    )


def test_route_fields_keep_go_struct_order_and_html_characters_are_escaped():
    config = {"name": "n", "type": "flannel", "delegate": {"note": "<a&b>"},
              "ipam": {"routes": [{"priority": 5, "gw": "10.1.17.9", "dst": "10.9.0.0/16", "junk": 1}]}}
    data = render_delegate_config(build(config, GUIDE_ENV))
    assert b'{"dst":"10.9.0.0/16","gw":"10.1.17.9","priority":5}' in data
    assert b'"note":"\\u003ca\\u0026b\\u003e"' in data


def test_lone_surrogate_escape_in_the_config_is_written_as_go_decodes_it():
    config = json.loads('{"name": "n", "type": "flannel", "delegate": {"note": "a\\udcffb\\ud83d\\ude00"}}')
    assert b'"note":"a\xef\xbf\xbdb\xf0\x9f\x98\x80"' in render_delegate_config(build(config, GUIDE_ENV))


def test_config_defaults():
    conf = load_flannel_config(SEED)
    assert (conf.subnet_file, conf.data_dir, conf.cni_version) == (DEFAULT_SUBNET_FILE, DEFAULT_DATA_DIR, "")
    assert (DEFAULT_SUBNET_FILE, DEFAULT_DATA_DIR) == ("/run/flannel/subnet.env", "/var/lib/cni/flannel")


def test_input_is_not_mutated():
    config = {"name": "cbr", "type": "flannel", "delegate": {"bridge": "x"}, "ipam": {"routes": [{"dst": "0.0.0.0/0"}]}}
    before = json.dumps(config)
    build(config, GUIDE_ENV)
    assert json.dumps(config) == before


@pytest.mark.parametrize(
    "delegate, key",
    [({"name": "x"}, "delegate.name"), ({"ipam": {}}, "delegate.ipam"), ({"type": 5}, "delegate.type")],
)
def test_delegate_keys_flannel_owns_are_rejected(delegate, key):
    with pytest.raises(CNIError) as info:
        build({"name": "cbr", "type": "flannel", "delegate": delegate}, GUIDE_ENV)
    assert (info.value.code, info.value.details) == (7, key)
    assert info.value.msg.startswith(("delegate must not have", "delegate.type must be a string"))


@pytest.mark.parametrize(
    "config, named",
    [
        ({"delegate": "bridge"}, "delegate"),
        ({"ipam": []}, "ipam"),
        ({"subnetFile": 3}, "subnetFile"),
        ({"dataDir": 5}, "dataDir"),
        ({"subnetFile": "/run/a\u0000b"}, "subnetFile"),
        ({"runtimeConfig": [1]}, "runtimeConfig"),
        ({"ipam": {"routes": [{"gw": "1.2.3.4"}]}}, "ipam.routes[0]"),
        ({"ipam": {"routes": [{"dst": "nope"}]}}, "ipam.routes[0]"),
        ({"ipam": {"routes": {"dst": "0.0.0.0/0"}}}, "ipam.routes"),
        ({"ipam": {"routes": [{"dst": "0.0.0.0/0", "mtu": "9000"}]}}, "ipam.routes[0].mtu"),
    ],
)
def test_bad_config_is_code_7_naming_the_key(config, named):
    with pytest.raises(CNIError) as info:
        build({"name": "cbr", "type": "flannel", **config}, GUIDE_ENV)
    assert info.value.code == 7 and info.value.msg.startswith(named) and info.value.details.startswith(named)


@pytest.mark.parametrize(
    "route, message",
    [
        # types.Route reads dst with Go's net.ParseCIDR and gw with net.ParseIP
        ({"dst": "10.9.0.0"}, "ipam.routes[0]: invalid CIDR address: 10.9.0.0"),
        ({"dst": "10.9.0.0/255.255.0.0"}, "ipam.routes[0]: invalid CIDR address: 10.9.0.0/255.255.0.0"),
        ({"dst": "0.0.0.0/0", "gw": "fe80::1%eth0"}, "ipam.routes[0]: invalid IP address: fe80::1%eth0"),
        ({"dst": "0.0.0.0/0", "gw": 5}, "ipam.routes[0].gw must be a string, got 5"),
    ],
)
def test_route_dst_and_gw_are_parsed_as_go_parses_them(route, message):
    with pytest.raises(CNIError) as info:
        build({"name": "cbr", "type": "flannel", "ipam": {"routes": [route]}}, GUIDE_ENV)
    assert (info.value.code, info.value.msg) == (7, message)


def test_version_picked_from_cni_versions_is_copied_into_the_delegate():
    delegate = build({"cniVersions": ["0.4.0", "1.1.0"], "name": "cbr", "type": "flannel"}, GUIDE_ENV)
    assert delegate["cniVersion"] == "1.1.0"


def test_keys_in_any_case_are_read_as_the_reference_reads_them():
    conf = load_flannel_config({"Name": "n", "name": "n", "SubnetFile": "/run/x.env", "DATADIR": "/var/x",
                                "Delegate": {"isDefaultGateway": True}})
    assert (conf.subnet_file, conf.data_dir, conf.delegate) == ("/run/x.env", "/var/x", {"isDefaultGateway": True})


def test_route_keys_in_any_case_are_read_as_go_decodes_types_route():
    config = {"name": "n", "type": "flannel",
              "ipam": {"routes": [{"Dst": "10.9.0.0/16", "GW": "10.1.17.9", "Priority": 5, "gw": ""}]}}
    data = render_delegate_config(build(config, GUIDE_ENV))
    assert b'"routes":[{"dst":"10.9.0.0/16","priority":5},{"dst":"10.1.0.0/16"}]' in data


def test_ipam_delegate_and_runtime_config_are_go_maps_keys_as_written_repeats_merged():
    # The reference's NetConf holds them as map[string]interface{}: Go matches no key inside
    # them ignoring case (so its "type" default is added beside "Type"), and a repeated key
    # decodes into the same map.
    stdin = (b'{"name": "n", "type": "flannel", "ipam": {"Type": "dhcp"}, "ipam": {"dataDir": "/d"},'
             b' "delegate": {"bridge": "b0"}, "Delegate": {"hairpinMode": true},'
             b' "runtimeConfig": {"mac": "0a:58:0a:01:11:02"}, "runtimeConfig": {"ips": []}}')
    delegate = build(decode_config(stdin), GUIDE_ENV)
    assert {key: delegate["ipam"][key] for key in ("Type", "type", "dataDir")} == {
        "Type": "dhcp", "type": "host-local", "dataDir": "/d"}
    assert (delegate["bridge"], delegate["hairpinMode"]) == ("b0", True)
    assert delegate["runtimeConfig"] == {"mac": "0a:58:0a:01:11:02", "ips": []}


def test_numbers_are_written_as_go_writes_the_float64_it_decoded_them_into():
    # The reference decodes `delegate` and `ipam` into interface{} (every number a float64)
    # and marshals 1400.0 as 1400, which a delegate reading an integer field accepts.
    config = json.loads('{"name": "n", "type": "flannel", "delegate": {"mtu": 1400.0, "vlan": 1e2},'
                        ' "ipam": {"weight": 2.5}}')
    data = render_delegate_config(build(config, GUIDE_ENV))
    assert b'"mtu":1400,' in data and b'"vlan":100}' in data and b'"weight":2.5' in data
