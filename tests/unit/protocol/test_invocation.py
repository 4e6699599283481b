"""The protocol boundary: the reference skel's checks, codes and order."""

import json

import pytest

from cni_rkt.errors import CNIError
from cni_rkt.protocol.invocation import parse_invocation

CONF = json.dumps({"cniVersion": "1.0.0", "name": "net1", "type": "bridge"}).encode()


def env(**overrides):
    base = {"CNI_COMMAND": "ADD", "CNI_CONTAINERID": "c1", "CNI_NETNS": "/var/run/netns/x",
            "CNI_IFNAME": "eth0", "CNI_PATH": "/opt/cni/bin"}
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


def error_of(environ, stdin=CONF):
    with pytest.raises(CNIError) as info:
        parse_invocation(environ, stdin)
    return info.value


@pytest.mark.parametrize("missing,command", [
    ("CNI_NETNS", "ADD"), ("CNI_CONTAINERID", "ADD"), ("CNI_IFNAME", "ADD"), ("CNI_PATH", "ADD"),
    ("CNI_CONTAINERID", "DEL"), ("CNI_IFNAME", "CHECK"), ("CNI_PATH", "GC"), ("CNI_PATH", "STATUS"),
])
def test_missing_required_variable_is_code_4_naming_it(missing, command):
    err = error_of(env(CNI_COMMAND=command, **{missing: None}))
    assert (err.code, err.msg) == (4, f"required env variables [{missing}] missing")


@pytest.mark.parametrize("command", ["ADD", "CHECK", "DEL"])
def test_an_empty_container_id_is_a_missing_variable_as_in_skel(command):
    # Debian's Go host-local 1.1.1 answers exactly this (code 4), not ValidateContainerID's code 3.
    err = error_of(env(CNI_COMMAND=command, CNI_CONTAINERID=""))
    assert (err.code, err.msg) == (4, "required env variables [CNI_CONTAINERID] missing")


def test_several_missing_variables_are_listed_in_skel_order():
    err = error_of(env(CNI_NETNS=None, CNI_PATH=None))
    assert err.msg == "required env variables [CNI_NETNS,CNI_PATH] missing"


def test_del_does_not_need_a_netns():
    inv = parse_invocation(env(CNI_COMMAND="DEL", CNI_NETNS=None), CONF)
    assert inv.netns == "" and inv.command == "DEL"


def test_environment_is_checked_before_stdin():
    err = error_of(env(CNI_NETNS=None), b"{bad")
    assert err.code == 4


@pytest.mark.parametrize("command", ["FOO", "add"])
def test_unknown_command_is_code_4(command):
    err = error_of(env(CNI_COMMAND=command))
    assert (err.code, err.msg) == (4, f"unknown CNI_COMMAND: {command}")


@pytest.mark.parametrize("stdin", [b"{not json", b"", b"[1]", b'{"name": "n", "mtu": NaN}', b'{"name": "n", "x": -Infinity}',
                                   b'\xef\xbb\xbf{"name": "n"}', '{"name": "n"}'.encode("utf-16")])
def test_undecodable_config_is_code_6(stdin):
    assert error_of(env(), stdin).code == 6


def test_nesting_deeper_than_the_stack_is_code_6():
    assert error_of(env(), b"[" * 100_000).code == 6


def test_empty_stdin_message_matches_the_reference():
    assert error_of(env(), b"").msg == "error unmarshall network config: unexpected end of JSON input"


@pytest.mark.parametrize("stdin,kind", [(b"[1]", "array"), (b"5", "number"), (b'"x"', "string"), (b"true", "bool")])
def test_a_config_that_is_no_object_is_named_in_json_words_as_go_does(stdin, kind):
    # Debian's Go host-local 1.1.1 answers exactly this (skel decodes the name into a struct).
    err = error_of(env(), stdin)
    assert (err.code, err.msg) == (6, f"error unmarshall network config: json: cannot unmarshal {kind} into Go value of "
                                      'type struct { Name string "json:\\"name\\"" }')


@pytest.mark.parametrize("stdin", [b"null", b" null\n"])
def test_a_null_config_is_one_without_a_name_as_go_decodes_it(stdin):
    # Go's decoder leaves a struct untouched on null: skel then finds no name (Debian's host-local: code 7).
    err = error_of(env(), stdin)
    assert (err.code, err.msg) == (7, "missing network name")


def test_missing_and_invalid_network_names_are_code_7():
    err = error_of(env(), b'{"cniVersion":"1.0.0"}')
    assert (err.code, err.msg) == (7, "missing network name")
    err = error_of(env(), b'{"cniVersion":"1.0.0","name":"bad name/x"}')
    assert (err.code, err.msg, err.details) == (7, "invalid characters found in network name", "bad name/x")


@pytest.mark.parametrize("name", [1, False, [], {}])
def test_a_network_name_that_is_not_a_string_is_code_6_as_with_go(name):
    err = error_of(env(), json.dumps({"cniVersion": "1.0.0", "name": name}).encode())
    assert err.code == 6 and json.dumps(name) in err.msg


def test_container_id_rules():
    assert error_of(env(CNI_CONTAINERID="bad id")).code == 4
    assert error_of(env(CNI_CONTAINERID="-x")).details == "-x"


def test_a_trailing_newline_is_not_part_of_a_valid_name():
    # Go's `$` matches only at the very end; Python's also before a final newline.
    err = error_of(env(CNI_CONTAINERID="c1\n"))
    assert (err.code, err.msg) == (4, "invalid characters in containerID")
    err = error_of(env(), b'{"cniVersion":"1.0.0","name":"net1\\n"}')
    assert (err.code, err.msg) == (7, "invalid characters found in network name")


@pytest.mark.parametrize("ifname,msg", [
    ("a" * 16, "interface name is too long"),
    ("eth\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9", "interface name is too long"),  # 10 characters, 17 bytes
    ("eth\udcff", "interface name is not valid UTF-8"),  # the byte 0xff in the environment
    (".", "interface name is . or .."),
    ("eth/0", "interface name contains / or : or whitespace characters"),
    ("eth 0", "interface name contains / or : or whitespace characters"),
])
def test_ifname_rules(ifname, msg):
    err = error_of(env(CNI_IFNAME=ifname))
    assert (err.code, err.msg) == (4, msg)


@pytest.mark.parametrize("ifname", ["a\x1cb", "a\x1fb"])
def test_separator_controls_are_not_whitespace_to_go(ifname):
    # Python's isspace() counts U+001C..U+001F, Go's unicode.IsSpace does not: Debian's
    # Go host-local takes these names, so a runtime sees the same answer from either.
    assert parse_invocation(env(CNI_IFNAME=ifname), CONF).ifname == ifname


def test_fifteen_character_ifname_is_fine():
    assert parse_invocation(env(CNI_IFNAME="a" * 15), CONF).ifname == "a" * 15


@pytest.mark.parametrize("version", ["9.9.9", "abc", "0.5.0"])
def test_unsupported_version_is_code_1_with_the_supported_list(version):
    stdin = json.dumps({"cniVersion": version, "name": "n"}).encode()
    err = error_of(env(), stdin)
    assert (err.code, err.msg) == (1, "incompatible CNI versions")
    assert err.details.startswith(f'config is "{version}", plugin supports ["0.1.0" "0.2.0"')


def test_missing_version_means_0_1_0():
    assert parse_invocation(env(), b'{"name":"n"}').cni_version == "0.1.0"


def test_cni_versions_list_picks_the_highest_supported():
    stdin = json.dumps({"cniVersions": ["0.3.1", "1.1.0", "9.0.0"], "name": "n"}).encode()
    assert parse_invocation(env(), stdin).cni_version == "1.1.0"


@pytest.mark.parametrize("command,version,allowed", [
    ("CHECK", "0.3.1", False), ("CHECK", "0.4.0", True),
    ("GC", "1.0.0", False), ("GC", "1.1.0", True), ("STATUS", "1.0.0", False), ("STATUS", "1.1.0", True),
])
def test_verbs_refused_below_their_version(command, version, allowed):
    stdin = json.dumps({"cniVersion": version, "name": "n"}).encode()
    environ = env(CNI_COMMAND=command)
    if allowed:
        assert parse_invocation(environ, stdin).command == command
    else:
        err = error_of(environ, stdin)
        assert (err.code, err.msg) == (1, f"config version does not allow {command}")


@pytest.mark.parametrize("command", ["CHECK", "GC", "STATUS"])
@pytest.mark.parametrize("version,msg", [
    ("abc", 'failed to convert major version part "abc": strconv.Atoi: parsing "abc": invalid syntax'),
    ("1.x.0", 'failed to convert minor version part "x": strconv.Atoi: parsing "x": invalid syntax'),
    ("1.0.0-rc1", 'failed to convert micro version part "0-rc1": strconv.Atoi: parsing "0-rc1": invalid syntax'),
    ("1.1.0 ", 'failed to convert micro version part "0 ": strconv.Atoi: parsing "0 ": invalid syntax'),
    ("1.1.0.1", 'invalid version "1.1.0.1": too many parts'),
    ("1.0.0\n", r'failed to convert micro version part "0\n": strconv.Atoi: parsing "0\n": invalid syntax'),  # %q
    ("99999999999999999999.0.0", 'failed to convert major version part "99999999999999999999": '
                                 'strconv.Atoi: parsing "99999999999999999999": value out of range'),
])
def test_a_verb_gated_by_version_cannot_compare_a_malformed_version_code_6(command, version, msg):
    # skel compares the config's version with the verb's minimum before it looks it up
    # (Debian's Go host-local: CHECK with "abc" is code 6, not code 1).
    err = error_of(env(CNI_COMMAND=command), json.dumps({"cniVersion": version, "name": "n"}).encode())
    assert (err.code, err.msg) == (6, msg)


@pytest.mark.parametrize("command", ["CHECK", "GC", "STATUS"])
def test_a_verb_gated_by_version_on_a_newer_config_says_the_plugin_is_too_old(command):
    err = error_of(env(CNI_COMMAND=command), json.dumps({"cniVersion": "9.9.9", "name": "n"}).encode())
    assert (err.code, err.msg, err.details) == (1, f"plugin version does not allow {command}", "")


@pytest.mark.parametrize("version", ["1.0", "01.0.0", "+1.0.0"])
def test_a_comparable_but_unlisted_version_is_still_incompatible_on_check(version):
    err = error_of(env(CNI_COMMAND="CHECK"), json.dumps({"cniVersion": version, "name": "n"}).encode())
    assert (err.code, err.msg) == (1, "incompatible CNI versions")


def test_gc_and_status_need_no_container():
    stdin = json.dumps({"cniVersion": "1.1.0", "name": "n"}).encode()
    inv = parse_invocation({"CNI_COMMAND": "GC", "CNI_PATH": "/x"}, stdin)
    assert inv.container_id == "" and inv.cni_path == ("/x",)


def test_netconf_keys_in_any_case_are_read_as_go_reads_them():
    stdin = json.dumps({"CNIVersion": "0.4.0", "Name": "net1", "TYPE": "bridge", "IPAM": {"Type": "host-local"},
                        "ipam_extra": 1}).encode()
    inv = parse_invocation(env(), stdin)
    assert (inv.cni_version, inv.network_name, inv.config["type"], inv.config["ipam"]) == ("0.4.0", "net1", "bridge",
                                                                                    {"type": "host-local"})
    assert inv.config["ipam_extra"] == 1  # keys outside NetConf are the plugin's to read


def test_an_object_key_given_twice_is_decoded_as_go_decodes_it():
    # Go decodes the second "ipam" into the first (the subnet stays); Python's json kept the last only
    stdin = (b'{"cniVersion": "1.0.0", "name": "net1", "mtu": 1400, "mtu": 1300,'
             b' "ipam": {"type": "host-local", "subnet": "10.1.0.0/24"}, "ipam": {"gateway": "10.1.0.9"}}')
    config = parse_invocation(env(), stdin).config
    assert config["ipam"] == {"type": "host-local", "subnet": "10.1.0.0/24", "gateway": "10.1.0.9"}
    assert config["mtu"] == 1300


def test_a_repeated_key_merges_at_every_depth_the_plugin_reads():
    """Go decodes a repeated field into the value already there, at any depth; the plugin's
    own one-pass respelling of `decoded` sees every repeat (the NetConf pass alone would not)."""
    from cni_rkt.ipam.config import load_ipam_config
    from cni_rkt.plugins.bridge_config import load_config

    stdin = (b'{"cniVersion": "1.0.0", "name": "net1", "type": "bridge",'
             b' "args": {"cni": {"mac": "02:00:00:00:00:0a"}},'
             b' "ipam": {"type": "host-local", "ranges": [[{"subnet": "10.1.0.0/16"}]]},'
             b' "ipam": {"ranges": [[{"gateway": "10.1.0.254"}]]}, "args": {"cni": {"other": 1}}}')
    inv = parse_invocation(env(), stdin)
    (first,) = load_ipam_config(inv.decoded, "", "1.0.0").range_sets[0].ranges
    assert (str(first.subnet), str(first.gateway)) == ("10.1.0.0/16", "10.1.0.254")
    assert load_config(inv.decoded, "", "1.0.0").mac == "02:00:00:00:00:0a"
