"""call_plugin: our own launchers of this version run in-process, anything else is exec'd."""

import json

import pytest

from cni_rkt import __version__
from cni_rkt.errors import CNIError
from cni_rkt.launcher import render_launcher
from cni_rkt.protocol import delegate, runner

ENV = {"CNI_COMMAND": "ADD", "CNI_CONTAINERID": "c1", "CNI_IFNAME": "eth0", "CNI_PATH": "/x", "CNI_ARGS": "A=1"}


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
    out = delegate.call_plugin("host-local", "DEL", b"{}", ENV, (directory,))
    assert out == b'{"cniVersion":"1.0.0","ips":[]}\n'
    assert in_process_calls == [("host-local", dict(ENV, CNI_COMMAND="DEL"), b"{}")]
    assert len(fp.calls) == 0


def test_own_launcher_of_another_version_is_execed(tmp_path, in_process_calls, fp):
    text = render_launcher("host-local", "/usr/bin/python3", ["/nowhere"]).replace(
        f"host-local {__version__}", "host-local 0.0.9"
    )
    directory = install(tmp_path, text)
    fp.register([f"{directory}/host-local"], stdout=b"{}")
    assert delegate.call_plugin("host-local", "ADD", b"{}", ENV, (directory,)) == b"{}"
    assert in_process_calls == []
    assert len(fp.calls) == 1


def test_in_process_delegation_can_be_switched_off(tmp_path, in_process_calls, fp):
    directory = install(tmp_path, render_launcher("host-local", "/usr/bin/python3", ["/nowhere"]))
    fp.register([f"{directory}/host-local"], stdout=b"{}")
    delegate.call_plugin("host-local", "ADD", b"{}", dict(ENV, CNI_RKT_INPROCESS_DELEGATE="0"), (directory,))
    assert in_process_calls == [] and len(fp.calls) == 1


def test_in_process_error_is_raised_like_an_execed_one(tmp_path, monkeypatch):
    directory = install(tmp_path, render_launcher("host-local", "/usr/bin/python3", ["/nowhere"]))
    reply = json.dumps({"cniVersion": "1.0.0", "code": 11, "msg": "no IP addresses available", "details": "n"})
    monkeypatch.setattr(runner, "run", lambda *_: (reply.encode(), 1))
    with pytest.raises(CNIError) as caught:
        delegate.call_plugin("host-local", "ADD", b"{}", ENV, (directory,))
    assert (caught.value.code, caught.value.msg, caught.value.details) == (11, "no IP addresses available", "n")


def test_foreign_executable_is_not_taken_for_ours(tmp_path):
    directory = install(tmp_path, "#!/bin/sh\necho '# cni-rkt launcher: '\n")
    assert delegate.own_launcher_plugin(f"{directory}/host-local") is None
