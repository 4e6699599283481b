"""The `--json` outputs are an interface: every key they emit is documented in the README's section
for that command, so scripts can rely on it (and a new key cannot slip in undocumented)."""

import json
import os
import re

from cni_rkt.cli import worker
from cni_rkt.cli.main import main
from cni_rkt.worker.control import WorkerInfo
from plugin_calls import REPO_ROOT

VALIDATE_SECTION = "## Linting net.d files"
IPAM_SECTION = "## IPAM reservations"
WORKER_SECTION = "## The plugins' worker"


def readme_section(title: str) -> str:
    with open(os.path.join(REPO_ROOT, "README.md"), encoding="utf-8") as f:
        text = f.read()
    start = text.index(title)
    end = text.find("\n## ", start + 1)
    return text[start:end]


def keys(value) -> set[str]:
    if isinstance(value, dict):
        return set(value) | {k for v in value.values() for k in keys(v)}
    if isinstance(value, list):
        return {k for v in value for k in keys(v)}
    return set()


def undocumented(output: dict, section: str) -> set[str]:
    documented = set(re.findall(r'"([A-Za-z]+)"', readme_section(section)))
    return keys(output) - documented


def test_ipam_list_and_reclaim_json_keys_are_documented(tmp_path, capsys):
    network = tmp_path / "net1"
    network.mkdir(parents=True)
    (network / "10.5.0.2").write_text("c1\r\neth0")
    (network / "10.5.0.3").write_text("c2")  # a legacy file: ifname null
    assert main(["ipam", "list", "--data-dir", str(tmp_path), "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert main(["ipam", "reclaim", "net1", "--data-dir", str(tmp_path), "--valid", "c3", "--dry-run", "--json"]) == 0
    reclaimed = json.loads(capsys.readouterr().out)
    assert len(listed["networks"][0]["reservations"]) == len(reclaimed["released"]) == 2
    assert undocumented(listed, IPAM_SECTION) == set()
    assert undocumented(reclaimed, IPAM_SECTION) == set()


def test_worker_status_json_keys_are_documented(tmp_path, capsys):
    assert main(["worker", "status", "--socket-dir", str(tmp_path), "--json"]) == 3
    status = json.loads(capsys.readouterr().out)
    status["workers"] = [worker._as_json(WorkerInfo(pid=10, socket="/run/cni-rkt/w.sock", idle_seconds=60.0,
                                                    uptime_seconds=5.0, resident_kib=2048, peak_resident_kib=4096,
                                                    listening=True, children={11: 1024}))]
    assert undocumented(status, WORKER_SECTION) == set()


def test_validate_json_keys_are_documented(tmp_path, capsys):
    (tmp_path / "10-a.conf").write_text('{"cniVersion": "1.0.0", "name": "a", "type": "bridge", "mtu": "x"}')
    assert main(["validate", "--no-config", "--format", "json", str(tmp_path / "10-a.conf"),
                 str(tmp_path / "absent.conf")]) == 3
    report = json.loads(capsys.readouterr().out)
    assert report["findings"] and report["unreadable"]
    assert undocumented(report, VALIDATE_SECTION) == set()
