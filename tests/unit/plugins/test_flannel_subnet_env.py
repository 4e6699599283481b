"""flanneld's subnet.env, parsed as the reference plugin parses it."""

import pytest

from cni_rkt.errors import CNIError
from cni_rkt.flannel.subnet_env import SubnetEnv, load_subnet_env, parse_subnet_env

def lines(*items: str, end: str = "\n") -> str:
    return "".join(item + end for item in items)


GUIDE_EXAMPLE = "FLANNEL_NETWORK=10.1.0.0/16\nFLANNEL_SUBNET=10.1.17.1/24\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=true\n"


def test_guide_example_every_ipv4_key():
    env = parse_subnet_env(GUIDE_EXAMPLE)
    assert env == SubnetEnv(
        networks=("10.1.0.0/16",), subnet="10.1.17.0/24", ipv6_networks=(), ipv6_subnet=None, mtu=1450, ipmasq=True
    )


def test_shipped_example_file_parses(request):
    env = load_subnet_env(str(request.config.rootpath / "examples/flannel/subnet.env"))
    assert (env.networks, env.subnet, env.mtu, env.ipmasq) == (("10.1.0.0/16",), "10.1.17.0/24", 1450, True)


def test_subnet_host_bits_are_dropped_networks_too():
    env = parse_subnet_env(lines("FLANNEL_NETWORK=10.1.2.3/16", "FLANNEL_SUBNET=10.1.17.77/24", "FLANNEL_MTU=1",
                                 "FLANNEL_IPMASQ=false"))
    assert (env.networks, env.subnet) == (("10.1.0.0/16",), "10.1.17.0/24")


def test_several_networks_comma_separated_repeats_dropped_order_kept():
    text = lines("FLANNEL_NETWORK=10.1.0.0/16,10.2.0.0/16,10.1.5.5/16", "FLANNEL_SUBNET=10.1.3.1/24",
                 "FLANNEL_MTU=1450", "FLANNEL_IPMASQ=true")
    assert parse_subnet_env(text).networks == ("10.1.0.0/16", "10.2.0.0/16")


def test_dual_stack():
    text = (
        "FLANNEL_NETWORK=10.1.0.0/16\nFLANNEL_SUBNET=10.1.3.1/24\n"
        "FLANNEL_IPV6_NETWORK=fd00:10::/56,fd00:20::/56\nFLANNEL_IPV6_SUBNET=fd00:10:0:3::1/64\n"
        "FLANNEL_MTU=1400\nFLANNEL_IPMASQ=true\n"
    )
    env = parse_subnet_env(text)
    assert env.ipv6_networks == ("fd00:10::/56", "fd00:20::/56")
    assert env.ipv6_subnet == "fd00:10:0:3::/64"


def test_ipv6_only_is_complete():
    env = parse_subnet_env(lines("FLANNEL_IPV6_NETWORK=fd00::/48", "FLANNEL_IPV6_SUBNET=fd00:0:0:7::1/64",
                                 "FLANNEL_MTU=1450", "FLANNEL_IPMASQ=true"))
    assert (env.networks, env.subnet, env.ipv6_subnet) == ((), None, "fd00:0:0:7::/64")


@pytest.mark.parametrize(
    "value, expected", [("true", True), ("false", False), ("True", False), ("1", False), ("", False)]
)
def test_ipmasq_is_true_only_for_exactly_true(value, expected):
    text = f"FLANNEL_NETWORK=10.1.0.0/16\nFLANNEL_SUBNET=10.1.3.1/24\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ={value}"
    assert parse_subnet_env(text).ipmasq is expected


def test_unknown_keys_crlf_and_later_lines_win():
    text = lines("# written by flanneld", "FOO=bar", "FLANNEL_MTU=1", "FLANNEL_MTU=8951", "FLANNEL_NETWORK=10.1.0.0/16",
                 "FLANNEL_SUBNET=10.1.3.1/24", "FLANNEL_IPMASQ=true", end="\r\n")
    assert parse_subnet_env(text).mtu == 8951


def test_only_newline_ends_a_line_as_in_the_reference():
    # Go's bufio.Scanner splits on "\n" and drops one "\r" before it; a lone "\r" (or a form
    # feed) is part of the value, so a file with classic Mac line ends is one bad line.
    text = lines("FLANNEL_NETWORK=10.1.0.0/16", "FLANNEL_SUBNET=10.1.3.1/24", "FLANNEL_MTU=1450", "FLANNEL_IPMASQ=true",
                 end="\r")
    with pytest.raises(CNIError) as info:
        parse_subnet_env(text, "/x/subnet.env")
    assert info.value.code == 7
    assert info.value.msg.startswith("/x/subnet.env: FLANNEL_NETWORK: invalid CIDR address: 10.1.0.0/16\rFLANNEL_SUBNET")
    assert parse_subnet_env(GUIDE_EXAMPLE.replace("IPMASQ=true", "IPMASQ=true\f")).ipmasq is False


@pytest.mark.parametrize(
    "text, missing",
    [
        (
            "FLANNEL_MTU=1450\n",
            "FLANNEL_NETWORK, FLANNEL_IPV6_NETWORK, FLANNEL_SUBNET, FLANNEL_IPV6_SUBNET, FLANNEL_IPMASQ",
        ),
        ("FLANNEL_NETWORK=10.1.0.0/16\nFLANNEL_SUBNET=10.1.3.1/24\nFLANNEL_IPMASQ=true", "FLANNEL_MTU"),
        ("FLANNEL_NETWORK=10.1.0.0/16\nFLANNEL_MTU=1\nFLANNEL_IPMASQ=true", "FLANNEL_SUBNET, FLANNEL_IPV6_SUBNET"),
        ("", "FLANNEL_NETWORK, FLANNEL_IPV6_NETWORK, FLANNEL_SUBNET, FLANNEL_IPV6_SUBNET, FLANNEL_MTU, FLANNEL_IPMASQ"),
    ],
)
def test_missing_keys_are_named_in_the_reference_order(text, missing):
    with pytest.raises(CNIError) as info:
        parse_subnet_env(text, "/run/flannel/subnet.env")
    assert info.value.code == 7
    assert info.value.msg == f"loadFlannelSubnetEnv failed: /run/flannel/subnet.env is missing {missing}"


@pytest.mark.parametrize(
    "line, named",
    [
        ("FLANNEL_SUBNET=10.1.3.1", "FLANNEL_SUBNET: invalid CIDR address: 10.1.3.1"),
        ("FLANNEL_NETWORK=10.1.0.0/16,", "FLANNEL_NETWORK: invalid CIDR address: "),
        ("FLANNEL_IPV6_SUBNET=fd00::/129", "FLANNEL_IPV6_SUBNET: invalid CIDR address: fd00::/129"),
        # Go's net.ParseCIDR takes only a prefix length: no netmask, no IPv6 zone.
        ("FLANNEL_NETWORK=10.1.0.0/255.255.0.0", "FLANNEL_NETWORK: invalid CIDR address: 10.1.0.0/255.255.0.0"),
        ("FLANNEL_SUBNET=10.1.3.1/0.0.0.255", "FLANNEL_SUBNET: invalid CIDR address: 10.1.3.1/0.0.0.255"),
        ("FLANNEL_IPV6_NETWORK=fd00::%eth0/56", "FLANNEL_IPV6_NETWORK: invalid CIDR address: fd00::%eth0/56"),
        ("FLANNEL_MTU=-1", "FLANNEL_MTU: not an unsigned integer: '-1'"),
        ("FLANNEL_MTU= 1450", "FLANNEL_MTU: not an unsigned integer: ' 1450'"),
        ("FLANNEL_MTU=4294967296", "FLANNEL_MTU: not an unsigned integer: '4294967296'"),
        ("FLANNEL_MTU", "FLANNEL_MTU has no value"),
    ],
)
def test_bad_values_name_the_file_key_and_value(line, named):
    with pytest.raises(CNIError) as info:
        parse_subnet_env(f"{line}\n", "/x/subnet.env")
    assert info.value.code == 7
    assert info.value.msg.startswith(f"/x/subnet.env: {named}")


def test_missing_file_is_try_again_later_naming_the_file(tmp_path):
    path = tmp_path / "subnet.env"
    with pytest.raises(CNIError) as info:
        load_subnet_env(str(path))
    assert info.value.code == 11
    assert info.value.msg == f"loadFlannelSubnetEnv failed: open {path}: no such file or directory"
    assert "flanneld" in info.value.details


def test_unreadable_path_is_an_io_error(tmp_path):
    with pytest.raises(CNIError) as info:
        load_subnet_env(str(tmp_path))  # a directory
    assert info.value.code == 5 and str(tmp_path) in info.value.msg
