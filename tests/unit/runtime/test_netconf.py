"""Finding a network in a conf dir under libcni's and rkt's rules."""

import json

import pytest

from cni_rkt.errors import CNIError
from cni_rkt.runtime.netconf import load_network


def write(directory, name, content):
    path = directory / name
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    return str(path)


def conf(name, **extra):
    return {"cniVersion": "1.0.0", "name": name, "type": "bridge", **extra}


def conflist(name, *types, **extra):
    return {"cniVersion": "1.0.0", "name": name, "plugins": [{"type": t} for t in types], **extra}


def test_libcni_reads_conflists_before_confs_whatever_their_names(tmp_path):
    write(tmp_path, "00-first.conf", conf("net"))
    path = write(tmp_path, "99-last.conflist", conflist("net", "bridge", "portmap"))
    net = load_network(str(tmp_path), "net")
    assert net.path == path
    assert [p["type"] for p in net.plugins] == ["bridge", "portmap"]


def test_libcni_first_file_in_lexical_order_wins(tmp_path):
    first = write(tmp_path, "10-a.conflist", conflist("net", "bridge"))
    write(tmp_path, "20-b.conflist", conflist("net", "ptp"))
    assert load_network(str(tmp_path), "net").path == first


def test_libcni_runs_a_single_conf_as_a_one_plugin_list(tmp_path):
    write(tmp_path, "10.json", conf("net", cniVersion="0.4.0", bridge="br9"))
    net = load_network(str(tmp_path), "net")
    expected_plugin = conf("net", cniVersion="0.4.0", bridge="br9")
    assert (net.name, net.cni_version, net.plugins) == ("net", "0.4.0", (expected_plugin,))


def test_libcni_lookup_stops_at_a_file_it_cannot_parse(tmp_path):
    broken = write(tmp_path, "10-broken.conflist", "{not json")
    write(tmp_path, "20-net.conflist", conflist("net", "bridge"))
    with pytest.raises(CNIError) as info:
        load_network(str(tmp_path), "net")
    assert info.value.code == 6 and broken in info.value.msg


def test_libcni_broken_file_after_the_match_does_not_matter(tmp_path):
    write(tmp_path, "10-net.conflist", conflist("net", "bridge"))
    write(tmp_path, "20-broken.conflist", "{not json")
    assert load_network(str(tmp_path), "net").name == "net"


def test_rkt_reads_only_conf_files(tmp_path):
    write(tmp_path, "10-net.conflist", conflist("net", "bridge"))
    write(tmp_path, "20-net.json", conf("net"))
    with pytest.raises(CNIError) as info:
        load_network(str(tmp_path), "net", runtime="rkt")
    assert info.value.msg == f'no net configuration with name "net" in {tmp_path}'
    assert load_network(str(tmp_path), "net").path.endswith("10-net.conflist")  # libcni finds it


def test_rkt_first_conf_wins_and_keeps_the_file_bytes(tmp_path):
    text = '{"name": "net", "type": "bridge"}\n'
    write(tmp_path, "10-net.conf", text)
    write(tmp_path, "20-net.conf", conf("net", bridge="other"))
    net = load_network(str(tmp_path), "net", runtime="rkt")
    assert net.raw == text.encode() and net.cni_version == ""


def test_rkt_any_broken_conf_breaks_every_network(tmp_path):
    write(tmp_path, "10-net.conf", conf("net"))
    write(tmp_path, "99-broken.conf", "{")
    with pytest.raises(CNIError) as info:
        load_network(str(tmp_path), "net", runtime="rkt")
    assert info.value.code == 6 and "99-broken.conf" in info.value.msg


@pytest.mark.parametrize("name, subnet, masq", [("default", "172.16.28.0/24", True),
                                               ("default-restricted", "172.31.0.0/16", False)])
@pytest.mark.parametrize("directory", ["nope", "other-networks"])
def test_rkt_runs_its_built_in_network_when_no_file_names_it(tmp_path, directory, name, subnet, masq):
    (tmp_path / "other-networks").mkdir()
    write(tmp_path / "other-networks", "10-net.conf", conf("net"))
    net = load_network(str(tmp_path / directory), name, runtime="rkt")
    [plugin] = net.plugins
    assert (net.name, net.cni_version, plugin["type"], plugin["ipMasq"], plugin["ipam"]["subnet"]) == \
        (name, "0.1.0", "ptp", masq, subnet)
    assert json.loads(net.raw) == plugin  # the bytes rkt sends
    with pytest.raises(CNIError, match="no net configuration"):
        load_network(str(tmp_path / "other-networks"), name)  # libcni has no built-in networks


def test_a_user_file_named_like_a_built_in_network_replaces_it(tmp_path):
    write(tmp_path, "50-mine.conf", conf("default", bridge="mine"))
    net = load_network(str(tmp_path), "default", runtime="rkt")
    assert net.plugins[0]["type"] == "bridge" and net.path.endswith("50-mine.conf")


def test_a_broken_conf_breaks_the_built_in_networks_too(tmp_path):
    write(tmp_path, "99-broken.conf", "{")
    with pytest.raises(CNIError, match="99-broken.conf"):
        load_network(str(tmp_path), "default", runtime="rkt")


@pytest.mark.parametrize("directory", ["nope", "empty"])
def test_missing_or_empty_directory_says_it_holds_no_configs(tmp_path, directory):
    """libcni's NoConfigsFoundError: a wrong --conf-dir is told apart from a wrong name."""
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "README").write_text("not a config")
    with pytest.raises(CNIError) as info:
        load_network(str(tmp_path / directory), "net")
    assert info.value.code == 7 and info.value.msg == f"no net configurations found in {tmp_path / directory}"


def test_directory_without_the_name_says_so(tmp_path):
    write(tmp_path, "10-other.conflist", conflist("other", "bridge"))
    with pytest.raises(CNIError) as info:
        load_network(str(tmp_path), "net")
    assert info.value.msg == f'no net configuration with name "net" in {tmp_path}'


def test_cni_versions_picks_the_highest_supported(tmp_path):
    write(tmp_path, "10.conflist", {"cniVersions": ["0.4.0", "1.1.0", "9.0.0"], "name": "net",
                                    "plugins": [{"type": "bridge"}]})
    assert load_network(str(tmp_path), "net").cni_version == "1.1.0"


@pytest.mark.parametrize("value, expected", [(True, True), ("TRUE", True), ("false", False)])
def test_disable_check_accepts_bools_and_their_strings(tmp_path, value, expected):
    write(tmp_path, "10.conflist", conflist("net", "bridge", disableCheck=value))
    assert load_network(str(tmp_path), "net").disable_check is expected


@pytest.mark.parametrize("bad, key", [
    ({"cniVersion": "1.0.0", "name": "net", "plugins": []}, "plugins"),
    ({"cniVersion": "1.0.0", "name": "net", "plugins": [{"bridge": "x"}]}, "type"),
    (conflist("net", "bridge", disableGC="yes"), "disableGC"),
])
def test_invalid_list_names_the_key(tmp_path, bad, key):
    write(tmp_path, "10.conflist", bad)
    with pytest.raises(CNIError) as info:
        load_network(str(tmp_path), "net")
    assert info.value.code == 7 and key in str(info.value)



@pytest.mark.parametrize("versions, expected", [
    ({"cniVersion": "1.0.0", "cniVersions": ["0.4.0", "1.1.0"]}, "1.1.0"),
    ({"cniVersion": "1.1.0", "cniVersions": ["0.4.0"]}, "1.1.0"),
    ({"cniVersion": "1.0.0", "cniVersions": ["9.0.0"]}, "1.0.0"),
])
def test_cni_version_and_cni_versions_together_run_at_the_highest(tmp_path, versions, expected):
    """libcni's NetworkConfFromBytes sorts cniVersions with cniVersion and takes the highest it knows."""
    write(tmp_path, "10.conflist", {**versions, "name": "net", "plugins": [{"type": "bridge"}]})
    assert load_network(str(tmp_path), "net").cni_version == expected


@pytest.mark.parametrize("versions, key", [
    ({"cniVersion": 1.0}, "cniVersion"),
    ({"cniVersions": "1.1.0"}, "cniVersions"),
    ({"cniVersions": ["1.0.0", 1.1]}, "cniVersions"),
    ({"cniVersions": ["1.1.0", "latest"]}, "cniVersions"),
])
def test_a_version_that_is_not_a_version_string_is_refused(tmp_path, versions, key):
    """libcni refuses these; the list must not quietly run at 0.1.0 instead."""
    write(tmp_path, "10.conflist", {**versions, "name": "net", "plugins": [{"type": "bridge"}]})
    with pytest.raises(CNIError) as info:
        load_network(str(tmp_path), "net")
    assert info.value.code == 7 and key in str(info.value)


def test_a_single_conf_keeps_only_name_and_cni_version_at_list_level(tmp_path):
    """libcni's ConfListFromConf wraps a .conf as {name, cniVersion, plugins: [it]}: its
    disableCheck, disableGC and cniVersions are not list keys and do nothing (cri-o/ocicni#74)."""
    write(tmp_path, "10.conf", conf("net", disableCheck=True, disableGC=True, cniVersions=["1.1.0"]))
    net = load_network(str(tmp_path), "net")
    assert (net.cni_version, net.disable_check, net.disable_gc) == ("1.0.0", False, False)


@pytest.mark.parametrize("name, broken", [
    ("10-a.conflist", conflist("a", "bridge") | {"plugins": [{"bridge": "br0"}]}),
    ("10-a.conflist", {"cniVersion": "1.0.0", "plugins": [{"type": "bridge"}]}),
    ("10-a.conflist", conflist("a", "bridge", disableCheck="sometimes")),
    ("10-a.conf", {"cniVersion": "1.0.0", "name": "a", "bridge": "br0"}),
])
def test_libcni_lookup_stops_at_a_file_its_loader_refuses(tmp_path, name, broken):
    """libcni loads every file before it compares names: cnitool and containerd fail on a broken
    file sorted before the network asked for, so exec must not quietly run the later one."""
    broken_path = write(tmp_path, name, broken)
    write(tmp_path, "20-net.conf", conf("net"))
    with pytest.raises(CNIError) as info:
        load_network(str(tmp_path), "net")
    assert info.value.code == 7 and broken_path in info.value.msg


def test_libcni_lookup_passes_a_file_whose_name_is_only_unusable(tmp_path):
    """The name pattern is checked when a network runs, not when a file is loaded."""
    write(tmp_path, "10-a.conflist", conflist("my net", "bridge"))
    write(tmp_path, "20-net.conflist", conflist("net", "bridge"))
    assert load_network(str(tmp_path), "net").name == "net"


def test_cni_versions_are_compared_as_libcni_compares_them(tmp_path):
    """"1.0" is 1.0.0 to libcni, and entries newer than it knows are skipped, not refused."""
    write(tmp_path, "10.conflist", {"cniVersion": "0.4.0", "cniVersions": ["1.0", "0.3.1", "9.0.0"], "name": "net",
                                    "plugins": [{"type": "bridge"}]})
    assert load_network(str(tmp_path), "net").cni_version == "1.0"


def test_a_single_conf_with_null_name_or_version_loads_as_libcni_s_struct_reads_it(tmp_path):
    write(tmp_path, "10-a.conf", {"cniVersion": None, "name": None, "type": "bridge"})
    write(tmp_path, "20-b.conf", {"cniVersion": "1.0.0", "name": "net", "type": "bridge"})
    assert load_network(str(tmp_path), "net").path.endswith("20-b.conf")  # the lookup went past it


def test_a_bad_load_only_inlined_plugins_ends_the_lookup(tmp_path):
    write(tmp_path, "10.conflist", conflist("other", "bridge", loadOnlyInlinedPlugins="yes"))
    write(tmp_path, "20.conflist", conflist("net", "bridge"))
    with pytest.raises(CNIError, match="loadOnlyInlinedPlugins must be true or false"):
        load_network(str(tmp_path), "net")
