"""The real `cni-rkt validate` command, run as a process: exit codes, formats, stdin, project file."""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys

import pytest

REPO = pathlib.Path(__file__).resolve().parents[3]
EXAMPLES = REPO / "examples"
GOOD = '{"cniVersion": "0.4.0", "name": "n", "type": "bridge", "ipam": {"type": "host-local", "subnet": "10.9.0.0/16"}}'


def cni_rkt(*args: str, stdin: str = "", cwd: pathlib.Path = REPO, entry: str = "module") -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    env.pop("NO_COLOR", None)
    command = [sys.executable, "-m", "cni_rkt.cli.main"] if entry == "module" else [sys.executable, str(REPO / "bin" / "cni-rkt")]
    return subprocess.run([*command, "validate", *args], input=stdin, capture_output=True, text=True, cwd=cwd,
                          env=env, timeout=60)


@pytest.fixture
def broken_net_d(tmp_path) -> pathlib.Path:
    net_d = tmp_path / "net.d"
    net_d.mkdir()
    (net_d / "10-good.conf").write_text(GOOD)
    (net_d / "20-broken.conf").write_text('{\n  "name": "b",\n  "type": "bridge",\n}\n')
    return net_d


def test_examples_pass():
    result = cni_rkt("--no-config", str(EXAMPLES / "rkt" / "net.d"), str(EXAMPLES / "rkt-flannel" / "net.d"),
                     "--subnet-env", str(EXAMPLES / "flannel" / "subnet.env"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "[CNI105]" in result.stdout and "addIf" in result.stdout


def test_examples_pass_through_the_bin_entry_point():
    result = cni_rkt("--no-config", "--runtime", "rkt", str(EXAMPLES / "rkt-flannel" / "net.d"), entry="bin")
    assert result.returncode == 0, result.stdout + result.stderr


def test_github_format_on_a_broken_directory_prints_annotations_and_exits_1(broken_net_d):
    result = cni_rkt("--no-config", "--format", "github", str(broken_net_d))
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert f"::error file={broken_net_d}/20-broken.conf,line=3,col=19,title=CNI100::" in lines[0]
    assert all(line.startswith(("::error ", "::warning ", "::notice ")) for line in lines)
    assert any("title=CNI304" in line for line in lines)


def test_text_format_shows_the_line_and_caret_without_colour_when_piped(broken_net_d):
    result = cni_rkt("--no-config", str(broken_net_d / "20-broken.conf"))
    assert result.returncode == 1
    assert result.stdout.splitlines()[:3] == [
        f"{broken_net_d}/20-broken.conf:3:19: error: trailing comma before '}}': JSON allows no ',' after the last "
        "member [CNI100]",
        '    3 |   "type": "bridge",',
        "      |                   ^",
    ]
    assert "\033[" not in result.stdout
    assert "\033[" in cni_rkt("--no-config", "--color", "always", str(broken_net_d / "20-broken.conf")).stdout


@pytest.mark.parametrize("fmt", ["json", "sarif"])
def test_machine_formats_are_json(broken_net_d, fmt):
    result = cni_rkt("--no-config", "--format", fmt, str(broken_net_d))
    assert result.returncode == 1
    json.loads(result.stdout)


def test_warnings_fail_only_with_strict_or_fail_level(tmp_path):
    path = tmp_path / "a.conf"
    path.write_text(GOOD[:-1] + ', "addIf": "true"}')
    assert cni_rkt("--no-config", str(path)).returncode == 0
    assert cni_rkt("--no-config", "--strict", str(path)).returncode == 1
    assert cni_rkt("--no-config", "--fail-level", "warning", str(path)).returncode == 1
    assert cni_rkt("--no-config", "--strict", "--ignore", "CNI105", str(path)).returncode == 0


def test_usage_errors_exit_2(tmp_path):
    assert cni_rkt("--no-config").returncode == 2
    assert cni_rkt("--no-config", "--format", "xml", "x.conf").returncode == 2
    result = cni_rkt("--no-config", "--ignore", "CNI999", str(EXAMPLES))
    assert result.returncode == 2 and "unknown rule id 'CNI999'" in result.stderr
    (tmp_path / ".cni-rkt.toml").write_text("[validate]\nignore = 1\n")
    assert cni_rkt(str(EXAMPLES / "rkt" / "net.d"), cwd=tmp_path).returncode == 2


def test_unreadable_input_exits_3(tmp_path):
    (tmp_path / "ok.conf").write_text(GOOD)
    result = cni_rkt("--no-config", str(tmp_path / "ok.conf"), str(tmp_path / "missing.conf"))
    assert result.returncode == 3
    assert "missing.conf: no such file or directory" in result.stderr
    assert cni_rkt("--no-config", str(tmp_path / "*.conflist")).returncode == 3


def test_stdin_uses_the_given_name_for_its_kind():
    conflist = '{"cniVersion": "1.0.0", "name": "n", "plugins": [{"type": "loopback"}]}'
    assert cni_rkt("--no-config", "-", "--stdin-filename", "x.conflist", stdin=conflist).returncode == 0
    result = cni_rkt("--no-config", "-", "--stdin-filename", "x.conf", stdin=conflist)
    assert result.returncode == 1 and "x.conf:1:38: error" in result.stdout and "[CNI103]" in result.stdout


def test_globs_are_expanded(tmp_path):
    (tmp_path / "a.conf").write_text(GOOD)
    (tmp_path / "b.conf").write_text("{")
    result = cni_rkt("--no-config", "--format", "json", str(tmp_path / "*.conf"))
    assert sorted(os.path.basename(p) for p in json.loads(result.stdout)["files"]) == ["a.conf", "b.conf"]


def test_project_file_in_the_working_directory_applies(tmp_path):
    (tmp_path / "a.conf").write_text(GOOD[:-1] + ', "addIf": "true"}')
    (tmp_path / ".cni-rkt.toml").write_text('[validate]\nseverity = { CNI105 = "error" }\n')
    assert cni_rkt("a.conf", cwd=tmp_path).returncode == 1
    assert cni_rkt("--no-config", "a.conf", cwd=tmp_path).returncode == 0


def test_manifest_check_from_the_command_line(tmp_path):
    (tmp_path / "pod.yaml").write_text(
        "kind: Pod\nmetadata:\n  annotations:\n    rkt.alpha.kubernetes.io/stage1-name-override: fly\n"
        "spec:\n  containers:\n  - name: a\n")
    result = cni_rkt("--no-config", str(tmp_path / "pod.yaml"))
    assert result.returncode == 1 and "[K8S600]" in result.stdout


def test_cni_path_reports_missing_executables(tmp_path):
    (tmp_path / "a.conf").write_text(GOOD)
    (tmp_path / "bin").mkdir()
    result = cni_rkt("--no-config", "--cni-path", str(tmp_path / "bin"), str(tmp_path / "a.conf"))
    assert result.returncode == 1 and result.stdout.count("[ENV500]") == 2


def test_list_rules():
    result = cni_rkt("--list-rules")
    assert result.returncode == 0 and result.stdout.startswith("CNI100  error")


def test_validate_imports_neither_jsonschema_nor_other_subcommands_and_plugins_never_import_jsonschema():
    code = ("import sys, io, contextlib\n"
            "import cni_rkt.protocol.runner\n"
            "assert 'jsonschema' not in sys.modules\n"
            "from cni_rkt.cli.main import main\n"
            "with contextlib.redirect_stdout(io.StringIO()):\n"
            f"    main(['validate', '--no-config', {str(EXAMPLES / 'rkt' / 'net.d')!r}])\n"
            "print('jsonschema' in sys.modules, 'cni_rkt.cli.install' in sys.modules, 'pyroute2' in sys.modules)\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO,
                            env=dict(os.environ, PYTHONPATH=str(REPO)))
    assert result.stdout.strip() == "False False False", result.stderr


def test_an_internal_error_is_exit_3_not_findings(monkeypatch, capsys):
    from cni_rkt.cli.main import main
    import cni_rkt.validate.engine as engine

    def broken(paths, options):
        raise RuntimeError("bug")

    monkeypatch.setattr(engine, "validate", broken)
    assert main(["validate", "--no-config", str(EXAMPLES / "rkt" / "net.d")]) == 3
    assert "internal error: RuntimeError('bug')" in capsys.readouterr().err


@pytest.mark.parametrize("content, words", [
    ("{not json", "Expecting property name"),
    ('{"type": 5}', "not a valid JSON Schema"),
])
def test_a_broken_third_party_schema_is_a_usage_error(tmp_path, content, words):
    (tmp_path / "schemas").mkdir()
    (tmp_path / "schemas" / "calico.json").write_text(content)
    (tmp_path / "a.conf").write_text('{"cniVersion": "1.0.0", "name": "n", "type": "calico"}')
    result = cni_rkt("--no-config", "--schema-dir", str(tmp_path / "schemas"), str(tmp_path / "a.conf"))
    assert result.returncode == 2 and words in result.stderr
