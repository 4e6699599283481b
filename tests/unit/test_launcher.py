"""`cni-rkt install`: launchers a runtime can exec with its own minimal environment."""

import json
import os
import subprocess
import sys

import pytest

from cni_rkt import __version__
from cni_rkt.cli.main import main as cli_main
from cni_rkt.launcher import render_launcher
from cni_rkt.protocol.delegate import own_launcher_plugin


def test_install_writes_executable_launchers_with_absolute_interpreter(tmp_path, capsys):
    assert cli_main(["install", "--dir", str(tmp_path)]) == 0
    for plugin in ("bridge", "host-local", "flannel"):
        path = tmp_path / plugin
        assert os.access(path, os.X_OK)
        first = path.read_text().splitlines()[0]
        assert first == f"#!{sys.executable} -IS"
        assert own_launcher_plugin(str(path)) == f"{plugin} {__version__}"
    assert capsys.readouterr().out.split() == [str(tmp_path / p) for p in ("bridge", "host-local", "flannel")]


def test_launcher_answers_version_with_an_empty_environment(tmp_path):
    cli_main(["install", "--dir", str(tmp_path), "--plugin", "bridge"])
    proc = subprocess.run([str(tmp_path / "bridge")], env={"CNI_COMMAND": "VERSION"},
                          input=b'{"cniVersion":"1.0.0"}', capture_output=True, check=False)
    assert proc.returncode == 0, proc.stderr
    assert "1.1.0" in json.loads(proc.stdout)["supportedVersions"]


def test_launcher_error_is_json_on_stdout(tmp_path):
    cli_main(["install", "--dir", str(tmp_path), "--plugin", "host-local"])
    proc = subprocess.run([str(tmp_path / "host-local")], env={"CNI_COMMAND": "ADD"}, input=b"",
                          capture_output=True, check=False)
    assert proc.returncode == 1
    assert json.loads(proc.stdout)["code"] == 4


def test_relative_interpreter_is_refused():
    with pytest.raises(ValueError):
        render_launcher("bridge", "python3", [])


def test_install_into_unwritable_place_fails_cleanly(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("")
    assert cli_main(["install", "--dir", str(blocker / "sub")]) == 1
    assert "cni-rkt install:" in capsys.readouterr().err
