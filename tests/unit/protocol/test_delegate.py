"""Delegation to a plugin on CNI_PATH, with exec'd binaries faked by pytest-subprocess."""

import json
import os

import pytest

from cni_rkt.errors import CNIError
from cni_rkt.launcher import render_launcher
from cni_rkt.protocol import delegate, runner
from cni_rkt.protocol.delegate import call_plugin, delegate_add, find_plugin

CONF = b'{"cniVersion":"1.0.0","name":"n","type":"bridge","ipam":{"type":"fake-ipam"}}'
ENV = {"CNI_COMMAND": "ADD", "CNI_CONTAINERID": "c1", "CNI_PATH": "x"}


@pytest.fixture
def plugin_path(tmp_path):
    exe = tmp_path / "fake-ipam"
    exe.write_text("#!/bin/sh\nexit 0\n")
    exe.chmod(0o755)
    return (str(tmp_path),)


def test_not_found_names_the_plugin_and_path():
    with pytest.raises(CNIError) as info:
        find_plugin("nonexistent", ("/nowhere/a", "/nowhere/b"))
    assert info.value.msg == 'failed to find plugin "nonexistent" in path [/nowhere/a /nowhere/b]'


@pytest.mark.parametrize("bad", ["../x", "a/b", ""])
def test_type_with_path_separator_is_refused(bad):
    with pytest.raises(CNIError) as info:
        find_plugin(bad, ("/usr/lib/cni",))
    assert info.value.code == 7


def test_delegate_gets_the_same_stdin_and_env_with_the_command_replaced(fp, plugin_path):
    exe = os.path.join(plugin_path[0], "fake-ipam")
    seen = {}

    def record(process):
        seen["env"] = process.kwargs["env"]

    def read_stdin(data):
        seen["stdin"] = data

    fp.register([exe], stdout=json.dumps({"cniVersion": "1.0.0", "ips": [{"address": "10.0.0.2/24"}]}),
                callback=record, stdin_callable=read_stdin)
    result = delegate_add("fake-ipam", CONF, {**ENV, "CNI_COMMAND": "CHECK"}, plugin_path, "1.0.0")
    assert result.ips[0].address == "10.0.0.2/24"
    assert seen["env"]["CNI_COMMAND"] == "ADD" and seen["env"]["CNI_CONTAINERID"] == "c1"
    assert seen["stdin"] == CONF


def test_delegate_error_keeps_its_code_and_message(fp, plugin_path):
    exe = os.path.join(plugin_path[0], "fake-ipam")
    fp.register([exe], stdout='{"code": 11, "msg": "busy", "details": "retry"}', returncode=1)
    with pytest.raises(CNIError) as info:
        call_plugin("fake-ipam", "DEL", CONF, ENV, plugin_path)
    assert (info.value.code, info.value.msg, info.value.details) == (11, "busy", "retry")


def test_delegate_failure_without_json_reports_its_stderr(fp, plugin_path):
    exe = os.path.join(plugin_path[0], "fake-ipam")
    fp.register([exe], stdout="", stderr="segfault", returncode=2)
    with pytest.raises(CNIError) as info:
        call_plugin("fake-ipam", "DEL", CONF, ENV, plugin_path)
    assert info.value.msg == 'netplugin failed: "segfault"'


def test_own_launcher_of_this_version_runs_in_process(tmp_path, fp):
    from cni_rkt.launcher import install_launchers

    install_launchers(str(tmp_path), plugins=("host-local",))
    # pytest-subprocess fails any exec it was not told about: this proves no process is started.
    env = {"CNI_COMMAND": "ADD", "CNI_CONTAINERID": "c1", "CNI_NETNS": "/x", "CNI_IFNAME": "eth0",
           "CNI_PATH": str(tmp_path)}
    with pytest.raises(CNIError) as info:
        call_plugin("host-local", "ADD", b'{"cniVersion":"9.9.9","name":"n"}', env, (str(tmp_path),))
    assert info.value.code == 1  # the in-process host-local's own version check


def test_launcher_of_another_version_is_execd(tmp_path, fp):
    exe = tmp_path / "host-local"
    exe.write_text("#!/bin/sh\n# cni-rkt launcher: host-local 0.0.1\n")
    exe.chmod(0o755)
    fp.register([str(exe)], stdout="{}")
    assert call_plugin("host-local", "DEL", CONF, ENV, (str(tmp_path),)) == b"{}"
    assert fp.call_count([str(exe)]) == 1


DELEGATE_ENV = {"CNI_COMMAND": "ADD", "CNI_CONTAINERID": "c1", "CNI_IFNAME": "eth0", "CNI_PATH": "/x", "CNI_ARGS": "A=1"}


def install(tmp_path, text: str, name: str = "host-local") -> str:
    path = tmp_path / name
    path.write_text(text)
    path.chmod(0o755)
    return str(tmp_path)


@pytest.fixture
def in_process_calls(monkeypatch):
    calls = []

    def fake_run(plugin, environ, stdin):
        calls.append((plugin, dict(environ), stdin))
        return b'{"cniVersion":"1.0.0","ips":[]}\n', 0

    monkeypatch.setattr(runner, "run", fake_run)
    return calls


def test_own_launcher_of_this_version_runs_in_process_with_the_delegate_environment(tmp_path, in_process_calls, fp):
    directory = install(tmp_path, render_launcher("host-local", "/usr/bin/python3", ["/nowhere"]))
    out = delegate.call_plugin("host-local", "DEL", b"{}", DELEGATE_ENV, (directory,))
    assert out == b'{"cniVersion":"1.0.0","ips":[]}\n'
    assert in_process_calls == [("host-local", dict(DELEGATE_ENV, CNI_COMMAND="DEL"), b"{}")]
    assert len(fp.calls) == 0


def test_in_process_delegation_can_be_switched_off(tmp_path, in_process_calls, fp):
    directory = install(tmp_path, render_launcher("host-local", "/usr/bin/python3", ["/nowhere"]))
    fp.register([f"{directory}/host-local"], stdout=b"{}")
    delegate.call_plugin("host-local", "ADD", b"{}", dict(DELEGATE_ENV, CNI_RKT_INPROCESS_DELEGATE="0"), (directory,))
    assert in_process_calls == [] and len(fp.calls) == 1


def test_in_process_error_is_raised_like_an_execed_one(tmp_path, monkeypatch):
    directory = install(tmp_path, render_launcher("host-local", "/usr/bin/python3", ["/nowhere"]))
    reply = json.dumps({"cniVersion": "1.0.0", "code": 11, "msg": "no IP addresses available", "details": "n"})
    monkeypatch.setattr(runner, "run", lambda *_: (reply.encode(), 1))
    with pytest.raises(CNIError) as caught:
        delegate.call_plugin("host-local", "ADD", b"{}", DELEGATE_ENV, (directory,))
    assert (caught.value.code, caught.value.msg, caught.value.details) == (11, "no IP addresses available", "n")




def test_a_plugin_delegating_to_itself_in_process_is_a_config_error_not_a_recursion(tmp_path):
    """ipam.type "bridge": the bridge's DEL ran the bridge's DEL in this process until Python's
    stack ran out (999 with a traceback; Go execs itself until killed)."""
    directory = install(tmp_path, render_launcher("bridge", "/usr/bin/python3", ["/nowhere"]), name="bridge")
    config = b'{"cniVersion":"1.0.0","name":"n","type":"bridge","ipam":{"type":"bridge"}}'
    env = {"CNI_COMMAND": "DEL", "CNI_CONTAINERID": "c1", "CNI_IFNAME": "eth0", "CNI_PATH": directory}
    out, code = runner.run("bridge", env, config)
    assert code == 1
    error = json.loads(out)
    assert error["code"] == 7 and 'plugin "bridge"' in error["msg"] and "loop" in error["msg"]
