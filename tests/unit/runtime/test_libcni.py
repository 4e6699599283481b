"""The runtime side of the protocol, with the exec'd plugins faked by pytest-subprocess."""

import base64
import json
import os

import pytest

from cni_rkt.errors import CNIError
from cni_rkt.runtime import cache, libcni
from cni_rkt.runtime.cache import Attachment
from cni_rkt.runtime.netconf import network_list

RESULT_A = {"cniVersion": "1.0.0", "interfaces": [{"name": "br0"}], "ips": [{"address": "10.1.0.2/24"}], "dns": {}}
RESULT_B = dict(RESULT_A, routes=[{"dst": "0.0.0.0/0"}])


class FakePlugins:
    """Fake plugin executables on a CNI path; records every exec in order."""

    def __init__(self, fp, directory):
        self.fp = fp
        self.directory = directory
        self.calls = []

    def expect(self, name, stdout=b"", returncode=0):
        exe = os.path.join(self.directory, name)
        if not os.path.exists(exe):
            with open(exe, "w") as f:
                f.write("#!/bin/sh\nexit 0\n")
            os.chmod(exe, 0o755)
        call = {"plugin": name}

        def record_env(process):
            call["env"] = process.kwargs["env"]

        def record_stdin(data):
            call["stdin"] = json.loads(data) if data.startswith(b"{\"") else data
            call["raw"] = data
            self.calls.append(call)

        stdout = json.dumps(stdout) if isinstance(stdout, dict) else stdout
        self.fp.register([exe], stdout=stdout, returncode=returncode, callback=record_env,
                         stdin_callable=record_stdin)

    def commands(self):
        return [(c["plugin"], c["env"]["CNI_COMMAND"]) for c in self.calls]


@pytest.fixture
def plugins(fp, tmp_path):
    directory = tmp_path / "bin"
    directory.mkdir()
    return FakePlugins(fp, str(directory))


@pytest.fixture
def rt(plugins, tmp_path):
    return libcni.Runtime(cni_path=(plugins.directory,), cache_dir=str(tmp_path / "cache"),
                          environ={"PATH": "/usr/bin", "CNI_IFNAME": "stale"})


def make_list(version="1.0.0", *types, **extra):
    capabilities = {"portMappings": True, "bandwidth": False}
    plugins = [{"type": t, "capabilities": capabilities, "keep": t} for t in types or ("a", "b")]
    config = {"cniVersion": version, "name": "net", "plugins": plugins, **extra}
    return network_list("/etc/cni/net.d/10-net.conflist", json.dumps(config).encode(), config)


ATTACHMENT = Attachment("net", "c1", "eth0", "/var/run/netns/p1", (("K8S_POD_NAME", "p"),),
                        {"portMappings": [{"hostPort": 80}], "bandwidth": {}})


def test_plugin_config_gets_name_version_prev_result_and_declared_capabilities_only():
    net = make_list()
    stdin = libcni.build_plugin_config(net, net.plugins[0], RESULT_A, ATTACHMENT.capability_args)
    assert json.loads(stdin) == {
        "capabilities": {"portMappings": True, "bandwidth": False}, "cniVersion": "1.0.0", "keep": "a", "name": "net",
        "prevResult": RESULT_A, "runtimeConfig": {"portMappings": [{"hostPort": 80}]}, "type": "a",
    }
    assert stdin == json.dumps(json.loads(stdin), sort_keys=True, separators=(",", ":")).encode()  # Go's map order


def test_add_chains_prev_result_and_caches_the_last_result(plugins, rt):
    plugins.expect("a", RESULT_A)
    plugins.expect("b", RESULT_B)
    result = libcni.add(make_list(), ATTACHMENT, rt)
    assert result == RESULT_B
    assert plugins.commands() == [("a", "ADD"), ("b", "ADD")]
    assert "prevResult" not in plugins.calls[0]["stdin"]
    assert plugins.calls[1]["stdin"]["prevResult"] == RESULT_A
    env = plugins.calls[0]["env"]
    assert (env["CNI_CONTAINERID"], env["CNI_NETNS"], env["CNI_IFNAME"], env["CNI_ARGS"], env["CNI_PATH"]) == (
        "c1", "/var/run/netns/p1", "eth0", "K8S_POD_NAME=p", plugins.directory)
    assert env["PATH"] == "/usr/bin" and "CNI_VERSION" not in env
    path = os.path.join(rt.cache_dir, "net-c1-eth0")
    assert os.stat(path).st_mode & 0o777 == 0o600 and os.listdir(rt.cache_dir) == ["net-c1-eth0"]
    with open(path) as f:
        entry = json.load(f)
    assert entry["kind"] == "cniCacheV1" and entry["result"] == RESULT_B
    assert (entry["containerId"], entry["ifName"], entry["networkName"], entry["netns"]) == (
        "c1", "eth0", "net", "/var/run/netns/p1")
    assert entry["cniArgs"] == [["K8S_POD_NAME", "p"]]
    assert json.loads(base64.b64decode(entry["config"]))["name"] == "net"


def test_add_result_without_version_gets_the_lists(plugins, rt):
    plugins.expect("a", {"ips": [{"address": "10.1.0.2/24"}]})
    assert libcni.add(make_list("0.4.0", "a"), ATTACHMENT, rt)["cniVersion"] == "0.4.0"


def test_failing_plugin_stops_the_list_with_its_own_error_and_caches_nothing(plugins, rt):
    plugins.expect("a", b'{"code": 11, "msg": "busy", "details": "later"}', returncode=1)
    with pytest.raises(libcni.PluginError) as info:
        libcni.add(make_list(), ATTACHMENT, rt)
    assert (info.value.code, info.value.msg, info.value.details) == (11, "busy", "later")
    assert info.value.describe() == 'plugin type="a" failed (add): busy; later'
    assert plugins.commands() == [("a", "ADD")]
    assert not os.path.exists(rt.cache_dir)


def test_result_that_is_not_json_is_a_decoding_error(plugins, rt):
    plugins.expect("a", b"hello")
    with pytest.raises(CNIError) as info:
        libcni.add(make_list("1.0.0", "a"), ATTACHMENT, rt)
    assert info.value.code == 6


def test_bad_container_id_is_refused_before_any_exec(plugins, rt):
    with pytest.raises(CNIError) as info:
        libcni.add(make_list(), Attachment("net", "bad/id", "eth0"), rt)
    assert info.value.code == 4 and plugins.calls == []


def test_del_runs_in_reverse_with_the_cached_result_and_drops_the_cache(plugins, rt):
    cache.write_entry(rt.cache_dir, ATTACHMENT, b"{}", RESULT_B)
    plugins.expect("b")
    plugins.expect("a")
    libcni.delete(make_list(), ATTACHMENT, rt)
    assert plugins.commands() == [("b", "DEL"), ("a", "DEL")]
    assert all(c["stdin"]["prevResult"] == RESULT_B for c in plugins.calls)
    assert not os.path.exists(cache.cache_path(rt.cache_dir, ATTACHMENT))


def test_del_before_0_4_0_sends_no_prev_result(plugins, rt):
    cache.write_entry(rt.cache_dir, ATTACHMENT, b"{}", dict(RESULT_A, cniVersion="0.3.1"))
    plugins.expect("a")
    libcni.delete(make_list("0.3.1", "a"), ATTACHMENT, rt)
    assert "prevResult" not in plugins.calls[0]["stdin"]


def test_del_without_a_cached_result_still_runs(plugins, rt):
    plugins.expect("a")
    libcni.delete(make_list("1.0.0", "a"), ATTACHMENT, rt)
    assert plugins.commands() == [("a", "DEL")] and "prevResult" not in plugins.calls[0]["stdin"]


def test_cached_result_is_converted_to_the_lists_version(plugins, rt):
    old = {"cniVersion": "0.3.1", "ips": [{"version": "4", "address": "10.1.0.2/24"}], "dns": {}}
    cache.write_entry(rt.cache_dir, ATTACHMENT, b"{}", old)
    plugins.expect("a")
    libcni.delete(make_list("1.0.0", "a"), ATTACHMENT, rt)
    assert plugins.calls[0]["stdin"]["prevResult"] == {"cniVersion": "1.0.0", "ips": [{"address": "10.1.0.2/24"}],
                                                       "dns": {}}


def test_check_sends_the_cached_result_to_every_plugin_in_order(plugins, rt):
    cache.write_entry(rt.cache_dir, ATTACHMENT, b"{}", RESULT_B)
    plugins.expect("a")
    plugins.expect("b")
    libcni.check(make_list(), ATTACHMENT, rt)
    assert plugins.commands() == [("a", "CHECK"), ("b", "CHECK")]
    assert plugins.calls[1]["stdin"]["prevResult"] == RESULT_B


def test_check_needs_0_4_0_and_honours_disable_check(plugins, rt):
    with pytest.raises(CNIError) as info:
        libcni.check(make_list("0.3.1"), ATTACHMENT, rt)
    assert info.value.code == 1 and "does not support the CHECK command" in info.value.msg
    libcni.check(make_list("1.0.0", disableCheck=True), ATTACHMENT, rt)
    assert plugins.calls == []


def test_gc_deletes_stale_cached_attachments_then_sends_gc_with_the_valid_set(plugins, rt):
    stale = Attachment("net", "gone", "eth0", "/var/run/netns/old")
    kept = Attachment("net", "alive", "eth1")
    other_network = Attachment("other", "gone", "eth0")
    for attachment in (stale, kept, other_network):
        cache.write_entry(rt.cache_dir, attachment, b"{}", RESULT_A)
    for expected in (("b", "DEL"), ("a", "DEL"), ("a", "GC"), ("b", "GC")):
        plugins.expect(expected[0])
    libcni.gc(make_list("1.1.0"), [("alive", "eth1")], rt)
    assert plugins.commands() == [("b", "DEL"), ("a", "DEL"), ("a", "GC"), ("b", "GC")]
    assert plugins.calls[0]["env"]["CNI_CONTAINERID"] == "gone"
    gc_call = plugins.calls[2]
    valid = [{"containerID": "alive", "ifname": "eth1"}]
    assert gc_call["stdin"]["cni.dev/valid-attachments"] == valid == gc_call["stdin"]["cni.dev/attachments"]
    assert all(gc_call["env"][k] == "" for k in ("CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME", "CNI_ARGS"))
    assert sorted(os.listdir(rt.cache_dir)) == ["net-alive-eth1", "other-gone-eth0"]


def test_gc_keeps_going_and_reports_every_error(plugins, rt):
    plugins.expect("a", b'{"code": 5, "msg": "disk"}', returncode=1)
    plugins.expect("b", b'{"code": 7, "msg": "conf"}', returncode=1)
    with pytest.raises(CNIError) as info:
        libcni.gc(make_list("1.1.0"), [], rt)
    assert info.value.code == 5
    assert 'type="a" failed (gc): disk' in info.value.msg and 'type="b" failed (gc): conf' in info.value.msg


def test_gc_before_1_1_0_only_deletes_stale_attachments(plugins, rt):
    libcni.gc(make_list("1.0.0"), [], rt)
    assert plugins.calls == []


def test_status_stops_at_the_first_error_and_needs_1_1_0(plugins, rt):
    libcni.status(make_list("1.0.0"), rt)
    assert plugins.calls == []
    plugins.expect("a", b'{"code": 50, "msg": "no addresses"}', returncode=1)
    with pytest.raises(CNIError) as info:
        libcni.status(make_list("1.1.0"), rt)
    assert info.value.code == 50 and plugins.commands() == [("a", "STATUS")]


def rkt_network(tmp_path, text):
    path = tmp_path / "10-net.conf"
    path.write_text(text)
    return network_list(str(path), text.encode(), json.loads(text))


def test_rkt_sends_the_file_bytes_and_cni_version_env(plugins, tmp_path):
    rt = libcni.Runtime((plugins.directory,), str(tmp_path / "cache"), {}, rkt=True)
    text = '{"name": "net", "type": "a"}\n'
    plugins.expect("a", {"ip4": {"ip": "10.1.0.2/24"}})
    result = libcni.add(rkt_network(tmp_path, text), ATTACHMENT, rt)
    assert result["ip4"]["ip"] == "10.1.0.2/24"
    assert plugins.calls[0]["raw"] == text.encode() and plugins.calls[0]["env"]["CNI_VERSION"] == "0.1.0"


def test_rkt_del_uses_the_config_recorded_at_add_and_drops_it_even_on_failure(plugins, tmp_path):
    rt = libcni.Runtime((plugins.directory,), str(tmp_path / "cache"), {}, rkt=True)
    at_add = b'{"name": "net", "type": "a", "bridge": "old"}'
    cache.write_entry(rt.cache_dir, ATTACHMENT, at_add, {"ip4": {"ip": "10.1.0.2/24"}})
    plugins.expect("a", b'{"code": 999, "msg": "boom"}', returncode=1)
    with pytest.raises(CNIError):
        libcni.delete(rkt_network(tmp_path, '{"name": "net", "type": "a", "bridge": "new"}'), ATTACHMENT, rt)
    assert plugins.calls[0]["raw"] == at_add
    assert os.listdir(rt.cache_dir) == []


def test_reads_a_cache_entry_written_by_libcni(tmp_path):
    entry = {"kind": "cniCacheV1", "containerId": "cnitool-0123", "config": base64.b64encode(b"{}").decode(),
             "ifName": "eth0", "networkName": "net", "cniArgs": [["IP", "10.1.0.9"]], "result": RESULT_A}
    (tmp_path / "net-cnitool-0123-eth0").write_text(json.dumps(entry))
    (tmp_path / "net-broken-eth0").write_text("{")
    [attachment] = cache.cached_attachments(str(tmp_path), "net")
    assert (attachment.container_id, attachment.ifname, attachment.cni_args) == ("cnitool-0123", "eth0",
                                                                                 (("IP", "10.1.0.9"),))
    assert cache.cached_result(str(tmp_path), attachment) == RESULT_A


UNREADABLE_RESULT = b'{"kind": "cniCacheV1", "result": {"cniVersion": "0.3.1", "ips": [{"address": "x"}]}}'


@pytest.mark.parametrize("entry", [b"", UNREADABLE_RESULT])
def test_del_with_an_unreadable_cached_result_runs_without_it_and_drops_it(plugins, rt, entry):
    """libcni's DelNetworkList: a cached result it cannot read or convert is removed and DEL
    runs without prevResult; a 0-byte cache file (cni#1066) must not make DEL fail forever."""
    os.makedirs(rt.cache_dir)
    with open(cache.cache_path(rt.cache_dir, ATTACHMENT), "wb") as f:
        f.write(entry)
    plugins.expect("a")
    libcni.delete(make_list("1.0.0", "a"), ATTACHMENT, rt)
    assert plugins.commands() == [("a", "DEL")] and "prevResult" not in plugins.calls[0]["stdin"]
    assert os.listdir(rt.cache_dir) == []


def test_add_of_a_single_conf_caches_it_wrapped_as_libcni_does(plugins, rt):
    """libcni caches the list's bytes, for a .conf its wrapped form: runtimes that tear down
    from the cached config read it back with ConfListFromBytes (CRI-O's ocicni)."""
    plugin = {"cniVersion": "1.0.0", "name": "net", "type": "a", "bridge": "br9"}
    raw = json.dumps(plugin).encode()
    plugins.expect("a", RESULT_A)
    libcni.add(network_list("/etc/cni/net.d/10-net.conf", raw, plugin), ATTACHMENT, rt)
    with open(cache.cache_path(rt.cache_dir, ATTACHMENT)) as f:
        recorded = base64.b64decode(json.load(f)["config"])
    assert json.loads(recorded) == {"cniVersion": "1.0.0", "name": "net", "plugins": [plugin]}
