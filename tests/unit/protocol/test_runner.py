"""run(): the one entry point, its output bytes and its catch-all."""

import json

import pytest

from cni_rkt.protocol import runner


def test_version_ignores_stdin_and_other_variables():
    env = {"CNI_COMMAND": "VERSION", "CNI_CONTAINERID": "", "CNI_NETNS": "dummy", "CNI_PATH": "dummy"}
    out, code = runner.run("bridge", env, b"garbage")
    assert code == 0 and out.endswith(b"\n")
    reply = json.loads(out)
    assert reply["supportedVersions"] == ["0.1.0", "0.2.0", "0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"]


def test_no_command_prints_about_on_stderr_and_exits_0(capsys):
    out, code = runner.run("host-local", {}, b"")
    assert (out, code) == (b"", 0)
    err = capsys.readouterr().err
    assert "CNI host-local plugin" in err and "CNI protocol versions supported: 0.1.0" in err


def test_errors_are_json_on_stdout_with_exit_1():
    out, code = runner.run("bridge", {"CNI_COMMAND": "FOO"}, b"{}")
    assert code == 1
    assert json.loads(out) == {"code": 4, "msg": "unknown CNI_COMMAND: FOO"}


def test_error_carries_the_config_version_when_known():
    env = {"CNI_COMMAND": "CHECK", "CNI_CONTAINERID": "c", "CNI_NETNS": "/x", "CNI_IFNAME": "eth0", "CNI_PATH": "/x"}
    out, code = runner.run("bridge", env, b'{"cniVersion":"0.3.1","name":"n"}')
    assert code == 1
    assert json.loads(out) == {"cniVersion": "0.3.1", "code": 1, "msg": "config version does not allow CHECK"}


def test_unexpected_exception_becomes_code_999_and_traceback_goes_to_stderr(monkeypatch, capsys):
    def boom(*_):
        raise ZeroDivisionError("division by zero")

    monkeypatch.setattr(runner, "_dispatch", boom)
    out, code = runner.run("bridge", {"CNI_COMMAND": "ADD"}, b"{}")
    assert code == 1
    reply = json.loads(out)
    assert reply["code"] == 999 and "ZeroDivisionError" in reply["msg"]
    assert "Traceback" in capsys.readouterr().err and b"Traceback" not in out


@pytest.mark.xfail(strict=True, reason="run() peeks at cniVersion with json.loads and catches ValueError, "
                   "not RecursionError (runner.py: owned by another change; see review24's report)")
def test_deeply_nested_stdin_is_a_decoding_error_not_the_catch_all():
    env = {"CNI_COMMAND": "DEL", "CNI_CONTAINERID": "c", "CNI_IFNAME": "eth0", "CNI_PATH": "/x"}
    out, code = runner.run("host-local", env, b'{"a":' * 100_000)
    assert code == 1 and json.loads(out)["code"] == 6
