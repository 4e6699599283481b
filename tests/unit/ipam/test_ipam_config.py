"""host-local config loading: folding, merging, validation with codes and key names."""

import pytest

from cni_rkt.errors import CNIError
from cni_rkt.ipam.config import DEFAULT_DATA_DIR, load_dns, load_ipam_config, parse_resolv_conf


def net(ipam=None, version="1.0.0", **top):
    config = {"cniVersion": version, "name": "net1", "type": "bridge", **top}
    if ipam is not None:
        config["ipam"] = {"type": "host-local", **ipam}
    return config


def range_strings(conf):
    return [str(rs) for rs in conf.range_sets]


def test_legacy_single_range_is_folded_in_front_of_ranges():
    conf = load_ipam_config(
        net({"subnet": "10.1.0.0/24", "rangeStart": "10.1.0.10", "ranges": [[{"subnet": "fd00::/120"}]]})
    )
    assert range_strings(conf) == ["10.1.0.10-10.1.0.254", "fd00::1-fd00::ff"]
    assert conf.data_dir == DEFAULT_DATA_DIR and conf.network == "net1"


def test_runtime_ip_ranges_come_first():
    conf = load_ipam_config(
        net({"ranges": [[{"subnet": "10.1.0.0/24"}]]}, runtimeConfig={"ipRanges": [[{"subnet": "10.9.0.0/24"}]]})
    )
    assert range_strings(conf) == ["10.9.0.1-10.9.0.254", "10.1.0.1-10.1.0.254"]


def test_requested_ips_from_cni_args_args_and_runtime_config_in_that_order():
    conf = load_ipam_config(
        net(
            {"subnet": "10.1.0.0/24"},
            args={"cni": {"ips": ["10.1.0.7", "10.1.0.5"]}},
            runtimeConfig={"ips": ["10.1.0.8/24", "10.1.0.5"]},
        ),
        "IgnoreUnknown=1;K8S_POD_NAME=x;IP=10.1.0.9",
    )
    assert [str(ip) for ip in conf.requested_ips] == ["10.1.0.9", "10.1.0.7", "10.1.0.5", "10.1.0.8"]


def test_null_or_empty_optional_keys_are_absent_as_in_go():
    conf = load_ipam_config(
        net({"subnet": "10.1.0.0/24", "ranges": None, "routes": []}, args={"cni": None},
            runtimeConfig={"ips": None, "ipRanges": [], "portMappings": []}),
    )
    assert range_strings(conf) == ["10.1.0.1-10.1.0.254"] and conf.routes == () and conf.requested_ips == ()
    assert load_ipam_config(net({"subnet": "10.1.0.0/24"}, args=None, runtimeConfig=None)).requested_ips == ()


def test_keys_in_any_case_count_as_go_reads_them():
    conf = load_ipam_config(
        {"cniVersion": "1.0.0", "name": "net1", "IPAM": {"Subnet": "10.1.0.0/24", "rangestart": "10.1.0.50",
                                                         "ROUTES": [{"DST": "0.0.0.0/0", "Gw": "10.1.0.1"}]},
         "Args": {"CNI": {"IPs": ["10.1.0.77"]}}, "RuntimeConfig": {"IPRanges": [[{"SUBNET": "10.2.0.0/24"}]]}},
    )
    assert range_strings(conf) == ["10.2.0.1-10.2.0.254", "10.1.0.50-10.1.0.254"]
    assert [(r.dst, r.gw) for r in conf.routes] == [("0.0.0.0/0", "10.1.0.1")]
    assert [str(ip) for ip in conf.requested_ips] == ["10.1.0.77"]


def test_routes_dns_path_and_data_dir():
    conf = load_ipam_config(
        net({"subnet": "10.1.0.0/24", "dataDir": "/tmp/x", "resolvConf": "/etc/r",
             "routes": [{"dst": "0.0.0.0/0"}, {"dst": "::0/0", "gw": "fd00::1"}]})
    )
    assert [(r.dst, r.gw) for r in conf.routes] == [("0.0.0.0/0", ""), ("::/0", "fd00::1")]
    assert (conf.data_dir, conf.resolv_conf) == ("/tmp/x", "/etc/r")


def test_legacy_versions_allow_one_range_set_per_family():
    two_v4 = {"ranges": [[{"subnet": "10.1.0.0/24"}], [{"subnet": "10.2.0.0/24"}]]}
    assert len(load_ipam_config(net(two_v4, version="0.3.0")).range_sets) == 2
    dual = {"ranges": [[{"subnet": "10.1.0.0/24"}], [{"subnet": "fd00::/120"}]]}
    assert len(load_ipam_config(net(dual, version="0.2.0")).range_sets) == 2
    with pytest.raises(CNIError) as caught:
        load_ipam_config(net(two_v4, version="0.2.0"))
    assert (caught.value.code, caught.value.msg) == (
        7, "CNI version 0.2.0 does not support more than 1 address per family")


@pytest.mark.parametrize(
    "config, code, msg, details",
    [
        (net(), 7, "IPAM config missing 'ipam' key", "ipam"),
        (net({}), 7, "no IP ranges specified", "ipam.ranges"),
        (net({"subnet": "10.1.0.5/24"}), 7,
         "invalid range set 0: Network has host bits set. For a subnet mask of length 24 the network address is 10.1.0.0",
         "ipam.subnet"),
        (net({"ranges": [[{"subnet": "10.1.0.0/24"}], [{"subnet": "10.2.0.0/24", "rangeEnd": "10.3.0.1"}]]}), 7,
         "invalid range set 1: rangeEnd 10.3.0.1 not in network 10.2.0.0/24", "ipam.ranges[1][0].rangeEnd"),
        (net({"ranges": [[{"subnet": "10.1.0.0/24"}], [{"subnet": "10.1.0.0/16"}]]}), 7,
         "range set 0 overlaps with 1", "ipam.ranges[0] and ipam.ranges[1]"),
        (net({"subnet": "10.1.0.0/24"}, runtimeConfig={"ipRanges": [[{"subnet": "10.1.0.0/25"}]]}), 7,
         "range set 0 overlaps with 1", "runtimeConfig.ipRanges[0] and ipam"),
        (net({"ranges": [[{"subnet": "10.1.0.0/24"}, {"subnet": "10.1.0.0/16"}]]}), 7,
         "invalid range set 0: subnets 10.1.0.1-10.1.0.254 and 10.1.0.1-10.1.255.254 overlap", "ipam.ranges[0]"),
        (net({"ranges": [[]]}), 7, "invalid range set 0: empty range set", "ipam.ranges[0]"),
        (net({"ranges": [[{"rangeStart": "10.1.0.1"}]]}), 7, "invalid range set 0: subnet is required",
         "ipam.ranges[0][0].subnet"),
        (net({"subnet": 5}), 7, "ipam.subnet must be a string, got 5", "ipam.subnet"),
        (net({"subnet": ""}), 7, "invalid range set 0: invalid CIDR address: ", "ipam.subnet"),
        (net({"subnet": "", "ranges": [[{"subnet": "10.1.0.0/24"}]]}), 7, "invalid range set 0: invalid CIDR address: ",
         "ipam.subnet"),
        (net({"ranges": [[{"subnet": ""}]]}), 7, "invalid range set 0: invalid CIDR address: ", "ipam.ranges[0][0].subnet"),
        (net({"subnet": None, "ranges": [[{"subnet": "10.1.0.0/24"}]]}), 7, "invalid range set 0: invalid CIDR address: ",
         "ipam.subnet"),
        (net({"ranges": [[{"subnet": None}]]}), 7, "invalid range set 0: invalid CIDR address: ",
         "ipam.ranges[0][0].subnet"),
        (net({"ranges": {"subnet": "10.1.0.0/24"}}), 7,
         'ipam.ranges must be a list, got {"subnet": "10.1.0.0/24"}', "ipam.ranges"),
        (net({"subnet": "10.1.0.0/24", "routes": [{"dst": "bad"}]}), 7,
         "ipam.routes[0]: invalid CIDR address: bad", "ipam.routes[0]"),
        (net({"subnet": "10.1.0.0/24"}, args={"cni": {"ips": ["10.1.0.x"]}}), 7,
         "args.cni.ips[0]: invalid IP address: 10.1.0.x", "args.cni.ips[0]"),
        (net({"subnet": "10.1.0.0/24"}, args={"cni": {"ips": ["10.1.0.5/99"]}}), 7,
         "args.cni.ips[0]: invalid IP address: 10.1.0.5/99", "args.cni.ips[0]"),
        (net({"subnet": "10.1.0.0/24"}, runtimeConfig={"ips": ["10.1.0.5/"]}), 7,
         "runtimeConfig.ips[0]: invalid IP address: 10.1.0.5/", "runtimeConfig.ips[0]"),
        (net({"subnet": "10.1.0.0/24", "ranges": {}}), 7, "ipam.ranges must be a list, got {}", "ipam.ranges"),
        (net({"subnet": "10.1.0.0/24", "ranges": ""}), 7, 'ipam.ranges must be a list, got ""', "ipam.ranges"),
        (net({"subnet": "10.1.0.0/24", "routes": {}}), 7, "ipam.routes must be a list, got {}", "ipam.routes"),
        (net({"subnet": "10.1.0.0/24"}, args="x"), 7, 'args must be a JSON object, got "x"', "args"),
        (net({"subnet": "10.1.0.0/24"}, args={"cni": 5}), 7, "args.cni must be a JSON object, got 5", "args.cni"),
        (net({"subnet": "10.1.0.0/24"}, args={"cni": {"ips": ""}}), 7, 'args.cni.ips must be a list, got ""',
         "args.cni.ips"),
        (net({"subnet": "10.1.0.0/24"}, runtimeConfig=[]), 7, "runtimeConfig must be a JSON object, got []", "runtimeConfig"),
        (net({"subnet": "10.1.0.0/24"}, runtimeConfig={"ipRanges": {}}), 7,
         "runtimeConfig.ipRanges must be a list, got {}", "runtimeConfig.ipRanges"),
        (net({"subnet": "10.1.0.0/24"}, runtimeConfig={"ips": [7]}), 7,
         "runtimeConfig.ips[0] must be a string, got 7", "runtimeConfig.ips[0]"),
        (net({"subnet": "10.1.0.0/24", "dataDir": "/var/a\u0000b"}), 7,
         'ipam.dataDir must not contain a NUL byte, got "/var/a\\u0000b"', "ipam.dataDir"),
        (net({"subnet": "10.1.0.0/24", "resolvConf": "/etc/r\u0000"}), 7,
         'ipam.resolvConf must not contain a NUL byte, got "/etc/r\\u0000"', "ipam.resolvConf"),
    ],
)
def test_invalid_configs_name_the_key(config, code, msg, details):
    with pytest.raises(CNIError) as caught:
        load_ipam_config(config)
    assert (caught.value.code, caught.value.msg, caught.value.details) == (code, msg, details)


@pytest.mark.parametrize(
    "cni_args, msg",
    [
        ("IP=bogus", 'ARGS: error parsing value of pair "IP=bogus": invalid IP address bogus'),
        ("IP=10.1.0.5/x", 'ARGS: error parsing value of pair "IP=10.1.0.5/x": invalid IP address 10.1.0.5/x'),
        ("IP=10.1.0.5/33", 'ARGS: error parsing value of pair "IP=10.1.0.5/33": invalid IP address 10.1.0.5/33'),
        ('IP=1"', r'ARGS: error parsing value of pair "IP=1\"": invalid IP address 1"'),  # the pair as Go's %q
        ("FOO=1", 'ARGS: unknown args ["FOO=1"]'),
        ("ip=10.1.0.5", 'ARGS: unknown args ["ip=10.1.0.5"]'),  # Go matches the field name, case-sensitively
    ],
)
def test_cni_args_errors_are_code_4(cni_args, msg):
    with pytest.raises(CNIError) as caught:
        load_ipam_config(net({"subnet": "10.1.0.0/24"}), cni_args)
    assert (caught.value.code, caught.value.msg) == (4, msg)


def test_resolv_conf_bytes_that_are_not_utf8_become_replacement_characters(tmp_path):
    path = tmp_path / "resolv.conf"
    path.write_bytes(b"nameserver 192.0.2.1\nsearch ok.example \xff\xfe.example\n")
    assert load_dns(str(path)).search == ("ok.example", "\ufffd\ufffd.example")


def test_resolv_conf_lines_break_only_at_newline_as_go_scans_them(tmp_path):
    path = tmp_path / "resolv.conf"
    path.write_bytes(b"nameserver 192.0.2.1\rsearch a\nnameserver 192.0.2.2\x0bdomain b\r\n")
    dns = load_dns(str(path))
    assert dns.nameservers == ("192.0.2.1", "192.0.2.2") and dns.search == () and dns.domain == ""


def test_parse_resolv_conf_like_the_reference():
    dns = parse_resolv_conf(
        "nameserver 1.1.1.1\n# comment\n; comment\nsearch a b\nsearch c\ndomain x.y\n"
        "options ndots:5 edns0\nnameserver 8.8.8.8\nnameserver\n  domain z.w  \n"
    )
    assert dns.nameservers == ("1.1.1.1", "8.8.8.8")
    assert dns.search == ("a", "b", "c") and dns.domain == "z.w" and dns.options == ("ndots:5", "edns0")
