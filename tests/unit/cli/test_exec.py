"""`cni-rkt exec` arguments and output; plugins faked by pytest-subprocess, or our host-local in-process."""

import json
import os
import re

import pytest

from cni_rkt.cli.exec import default_container_id
from cni_rkt.cli.main import main
from cni_rkt.launcher import install_launchers


@pytest.fixture
def setup(tmp_path):
    """A conf dir, an empty plugin dir and a cache dir; returns argv for `exec` with them."""
    for name in ("net.d", "bin"):
        (tmp_path / name).mkdir()

    def argv(*args):
        return ["exec", *args, "--conf-dir", str(tmp_path / "net.d"), "--cni-path", str(tmp_path / "bin"),
                "--cache-dir", str(tmp_path / "cache")]

    return tmp_path, argv


def fake_plugin(directory, name):
    exe = directory / name
    exe.write_text("#!/bin/sh\nexit 0\n")
    exe.chmod(0o755)
    return str(exe)


def test_default_container_id_is_stable_per_netns_like_cnitools():
    first = default_container_id("/var/run/netns/pod1")
    assert re.fullmatch(r"cni-rkt-[0-9a-f]{20}", first)
    assert first == default_container_id("/var/run/netns/pod1") != default_container_id("/var/run/netns/pod2")


@pytest.mark.parametrize("args, message", [
    (["add", "net"], "add needs NETNS"),
    (["check", "net", "/x", "--runtime", "rkt"], "rkt never runs CHECK"),
    (["add", "net", "/x", "--valid", "c1"], "--valid is for gc only"),
    (["add", "net", "/x", "--args", "IP"], "invalid CNI_ARGS pair 'IP'"),
    (["add", "net", "/x", "--args", "A=1=2"], "invalid CNI_ARGS pair 'A=1=2'"),
    (["add", "net", "/x", "--args", "IgnoreUnknown=1;IP="], "invalid CNI_ARGS pair 'IP='"),  # cnitool: no empty
    (["add", "net", "/x", "--args", "=10.1.0.5"], "invalid CNI_ARGS pair '=10.1.0.5'"),  # key or value
    (["add", "net", "/x", "--cap-args", "{"], "--cap-args: not JSON"),
    (["add", "net", "/x", "--cap-args", "[1]"], "must be a JSON object"),
    (["gc", "net", "--valid", ":eth0"], "names no container id"),
    (["gc", "net", "--valid", "c1:"], "--valid: 'c1:' names no interface"),
    # gc and status take no netns: a stray word (a container id meant to be kept) must not be ignored
    (["gc", "net", "c1"], "gc takes no NETNS"),
    (["status", "net", "/var/run/netns/x"], "status takes no NETNS"),
    # an unset "$VAR" must not fall back to the default id, or to a plugin error without the flag's name
    (["del", "net", "/x", "--container-id", ""], "--container-id: an empty container id"),
    (["add", "net", "/x", "--ifname", ""], "--ifname: an empty interface name"),
    # what libcni would refuse anyway, refused as the flag's fault
    (["del", "net", "/x", "--container-id", "../x"], "--container-id: invalid characters in containerID: '../x'"),
    (["del", "net", "/x", "--ifname", "a/b"], "--ifname: interface name contains / or : or whitespace"),
    (["gc", "net", "--valid", "c1/2"], "--valid: invalid characters in containerID: 'c1/2'"),
    (["gc", "net", "--valid", "c1:" + "x" * 16], "--valid: interface name is too long"),
    # rkt sends the file's bytes as they are: a runtimeConfig asked for would silently not be sent
    (["add", "net", "/x", "--runtime", "rkt", "--cap-args", '{"portMappings": []}'], "--cap-args: rkt sends no"),
])
def test_bad_arguments_exit_2_before_anything_runs(setup, capsys, fp, args, message):
    _, argv = setup
    assert main(argv(*args)) == 2
    assert message in capsys.readouterr().err


def test_add_prints_the_result_and_passes_what_a_runtime_passes(setup, capsys, fp):
    tmp_path, argv = setup
    (tmp_path / "net.d" / "10-net.conflist").write_text(json.dumps(
        {"cniVersion": "1.0.0", "name": "net", "plugins": [{"type": "fake", "capabilities": {"ips": True}}]}))
    exe = fake_plugin(tmp_path / "bin", "fake")
    seen = {}
    result = {"cniVersion": "1.0.0", "ips": [{"address": "10.1.0.5/24"}], "dns": {}}
    fp.register([exe], stdout=json.dumps(result), callback=lambda p: seen.update(env=p.kwargs["env"]),
                stdin_callable=lambda data: seen.update(stdin=json.loads(data)))
    code = main(argv("add", "net", "relative/ns", "--ifname", "net1", "--args", "IP=10.1.0.5",
                     "--cap-args", '{"ips": ["10.1.0.5/24"], "mac": "x"}'))
    out = capsys.readouterr().out
    assert code == 0 and json.loads(out) == result
    env = seen["env"]
    netns = os.path.abspath("relative/ns")
    assert (env["CNI_COMMAND"], env["CNI_NETNS"], env["CNI_IFNAME"], env["CNI_ARGS"]) == ("ADD", netns, "net1",
                                                                                         "IP=10.1.0.5")
    assert env["CNI_CONTAINERID"] == default_container_id(netns)
    assert seen["stdin"]["runtimeConfig"] == {"ips": ["10.1.0.5/24"]}
    assert os.listdir(tmp_path / "cache") == [f"net-{default_container_id(netns)}-net1"]


def test_plugin_error_is_printed_as_cni_error_json_with_exit_1(setup, capsys, fp):
    tmp_path, argv = setup
    (tmp_path / "net.d" / "10-net.conf").write_text('{"cniVersion": "1.0.0", "name": "net", "type": "fake"}')
    exe = fake_plugin(tmp_path / "bin", "fake")
    fp.register([exe], stdout='{"code": 7, "msg": "bad subnet", "details": "ipam.subnet"}', returncode=1)
    assert main(argv("add", "net", "/var/run/netns/x", "--container-id", "c1")) == 1
    captured = capsys.readouterr()
    assert json.loads(captured.out) == {"code": 7, "msg": "bad subnet", "details": "ipam.subnet"}
    assert 'plugin type="fake" failed (add): bad subnet' in captured.err


def test_unknown_network_and_missing_plugin_are_cni_errors(setup, capsys, fp):
    tmp_path, argv = setup
    assert main(argv("del", "net", "/x")) == 1
    assert json.loads(capsys.readouterr().out)["msg"] == f"no net configurations found in {tmp_path / 'net.d'}"
    (tmp_path / "net.d" / "10-net.conf").write_text('{"cniVersion": "1.0.0", "name": "net", "type": "absent"}')
    assert main(argv("del", "nowhere", "/x")) == 1
    assert json.loads(capsys.readouterr().out)["msg"].startswith('no net configuration with name "nowhere"')
    assert main(argv("del", "net", "/x")) == 1
    assert 'failed to find plugin "absent"' in json.loads(capsys.readouterr().out)["msg"]


def host_local_network(tmp_path):
    """Network "net" (1.1.0): our installed host-local alone, on 10.7.0.0/24; returns its dataDir."""
    install_launchers(str(tmp_path / "bin"), plugins=("host-local",))
    data = tmp_path / "data"
    (tmp_path / "net.d" / "10-net.conflist").write_text(json.dumps({
        "cniVersion": "1.1.0", "name": "net",
        "plugins": [{"type": "host-local", "ipam": {"type": "host-local", "subnet": "10.7.0.0/24",
                                                     "dataDir": str(data)}}]}))
    return data


def test_host_local_add_check_gc_del_through_our_installed_plugin(setup, capsys):
    """Our launcher runs in-process (no exec), so no netns is needed: host-local only writes files."""
    tmp_path, argv = setup
    data = host_local_network(tmp_path)
    for cid in ("c1", "c2"):
        assert main(argv("add", "net", "/var/run/netns/x", "--container-id", cid)) == 0
    added = json.loads(capsys.readouterr().out.split("}\n{")[0] + "}")
    assert added["ips"][0]["address"] == "10.7.0.2/24"
    assert main(argv("check", "net", "/var/run/netns/x", "--container-id", "c1")) == 0
    assert main(argv("gc", "net", "--valid", "c1")) == 0  # c2's cache entry and address go
    assert sorted(n for n in os.listdir(data / "net") if n[0].isdigit()) == ["10.7.0.2"]
    assert os.listdir(tmp_path / "cache") == ["net-c1-eth0"]
    assert main(argv("del", "net", "/var/run/netns/x", "--container-id", "c1")) == 0
    assert sorted(n for n in os.listdir(data / "net") if n[0].isdigit()) == []
    assert os.listdir(tmp_path / "cache") == []
    assert main(argv("status", "net")) == 0


def test_rkt_runtime_finds_only_conf_files_and_sends_them_unchanged(setup, capsys, fp):
    tmp_path, argv = setup
    text = '{"name": "default", "type": "fake"}'
    (tmp_path / "net.d" / "10-default.conflist").write_text(
        '{"cniVersion": "1.0.0", "name": "default", "plugins": [{"type": "other"}]}')
    (tmp_path / "net.d" / "99-default.conf").write_text(text)
    exe = fake_plugin(tmp_path / "bin", "fake")
    seen = {}
    fp.register([exe], stdout='{"ip4": {"ip": "172.16.28.2/24"}}', callback=lambda p: seen.update(p.kwargs["env"]),
                stdin_callable=lambda data: seen.update(stdin=data))
    assert main(argv("add", "default", "/var/run/netns/p", "--runtime", "rkt")) == 0
    assert json.loads(capsys.readouterr().out)["ip4"]["ip"] == "172.16.28.2/24"
    assert seen["stdin"] == text.encode() and seen["CNI_VERSION"] == "0.1.0"


def test_gc_valid_cid_alone_keeps_every_attachment_of_that_container(setup, capsys):
    """As `cni-rkt ipam reclaim --valid CID` does for the attachments in the cache: a bare CID is not
    CID:eth0, which would DEL its net1."""
    tmp_path, argv = setup
    data = host_local_network(tmp_path)
    for cid, ifname in (("c1", "eth0"), ("c1", "net1"), ("c2", "eth0")):
        assert main(argv("add", "net", "/var/run/netns/x", "--container-id", cid, "--ifname", ifname)) == 0
    assert main(argv("gc", "net", "--valid", "c1")) == 0
    assert sorted(os.listdir(tmp_path / "cache")) == ["net-c1-eth0", "net-c1-net1"]
    assert sorted(n for n in os.listdir(data / "net") if n[0].isdigit()) == ["10.7.0.2", "10.7.0.3"]
    capsys.readouterr()


def test_gc_valid_cid_alone_keeps_only_the_attachments_the_cache_knows_of(setup, capsys):
    """Unlike `ipam reclaim --valid CID` (the README says so): the plugins' GC is sent CID's cached
    attachments, so host-local releases CID's address on an interface whose cache entry is gone."""
    tmp_path, argv = setup
    data = host_local_network(tmp_path)
    for ifname in ("eth0", "net1"):
        assert main(argv("add", "net", "/var/run/netns/x", "--container-id", "c1", "--ifname", ifname)) == 0
    os.unlink(tmp_path / "cache" / "net-c1-net1")
    assert main(argv("gc", "net", "--valid", "c1")) == 0
    assert sorted(n for n in os.listdir(data / "net") if n[0].isdigit()) == ["10.7.0.2"]
    capsys.readouterr()


def test_gc_valid_cid_alone_never_dels_that_containers_attachment_cached_while_gc_runs(setup, capsys, fp,
                                                                                     monkeypatch):
    """The cache is read once: the attachments a bare --valid CID keeps and those gc DELs come from
    the same listing, so one of CID's cached just after it (a runtime's ADD meanwhile) is not DELed."""
    from cni_rkt.runtime import cache
    from cni_rkt.runtime.cache import Attachment

    tmp_path, argv = setup
    (tmp_path / "net.d" / "10-net.conflist").write_text(json.dumps(
        {"cniVersion": "1.0.0", "name": "net", "plugins": [{"type": "fake"}]}))
    exe = fake_plugin(tmp_path / "bin", "fake")
    deleted = []
    fp.register([exe], callback=lambda p: deleted.append((p.kwargs["env"]["CNI_CONTAINERID"],
                                                          p.kwargs["env"]["CNI_IFNAME"])))
    fp.keep_last_process(True)
    result = {"cniVersion": "1.0.0", "ips": [{"address": "10.1.0.5/24"}]}
    for cid in ("c1", "c2"):
        cache.write_entry(str(tmp_path / "cache"), Attachment("net", cid, "eth0"), b"{}", result)
    listed = cache.cached_attachments

    def listed_then_an_add_meanwhile(cache_dir, network):
        found = listed(cache_dir, network)
        cache.write_entry(cache_dir, Attachment("net", "c1", "net1"), b"{}", result)
        return found

    monkeypatch.setattr(cache, "cached_attachments", listed_then_an_add_meanwhile)
    assert main(argv("gc", "net", "--valid", "c1")) == 0
    assert deleted == [("c2", "eth0")]
    assert sorted(os.listdir(tmp_path / "cache")) == ["net-c1-eth0", "net-c1-net1"]
    capsys.readouterr()


def test_rkt_runtime_runs_rkt_s_built_in_default_network_when_no_file_names_it(setup, capsys, fp):
    """`rkt run` without --net joins "default": rkt's own ptp network unless net.d replaces it."""
    tmp_path, argv = setup
    exe = fake_plugin(tmp_path / "bin", "ptp")
    seen = {}
    fp.register([exe], stdout='{"ip4": {"ip": "172.16.28.2/24"}}', callback=lambda p: seen.update(p.kwargs["env"]),
                stdin_callable=lambda data: seen.update(stdin=data))
    assert main(argv("add", "default", "/var/run/netns/p", "--runtime", "rkt")) == 0
    sent = json.loads(seen["stdin"])
    assert (sent["type"], sent["ipMasq"], sent["ipam"]["subnet"]) == ("ptp", True, "172.16.28.0/24")
    assert seen["CNI_VERSION"] == "0.1.0"
    assert main(argv("add", "default", "/var/run/netns/p")) == 1  # libcni has no built-in networks
    assert "no net configurations found" in capsys.readouterr().out


@pytest.mark.parametrize("cap_args", ['{"portMappings": []}', "{", "[1]"])
def test_cap_args_from_the_environment_are_not_read_for_rkt(setup, capsys, fp, monkeypatch, cap_args):
    """rkt passes no capability args: $CAP_ARGS, even a malformed one, neither fails the command
    nor is recorded in the cache entry."""
    tmp_path, argv = setup
    monkeypatch.setenv("CAP_ARGS", cap_args)
    (tmp_path / "net.d" / "10-net.conf").write_text('{"name": "net", "type": "fake"}')
    exe = fake_plugin(tmp_path / "bin", "fake")
    fp.register([exe], stdout='{"ip4": {"ip": "10.1.0.5/24"}}')
    assert main(argv("add", "net", "/var/run/netns/p", "--runtime", "rkt", "--container-id", "c1")) == 0
    assert "capabilityArgs" not in json.loads((tmp_path / "cache" / "net-c1-eth0").read_text())
    capsys.readouterr()


@pytest.mark.parametrize("cap_args, message", [
    ("{", "$CAP_ARGS: not JSON"),
    ("[1]", "$CAP_ARGS: must be a JSON object"),
])
def test_a_malformed_cap_args_environment_variable_is_named_not_the_flag(setup, capsys, fp, monkeypatch,
                                                                         cap_args, message):
    _, argv = setup
    monkeypatch.setenv("CAP_ARGS", cap_args)
    assert main(argv("add", "net", "/x")) == 2
    err = capsys.readouterr().err
    assert message in err and "--cap-args" not in err
