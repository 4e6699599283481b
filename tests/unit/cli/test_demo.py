"""`cni-rkt demo --config`: a config the demo cannot use is a usage error, before anything is made."""

import json
import tempfile

import pytest

from cni_rkt.cli.main import main

BRIDGE = {"name": "demo", "type": "bridge", "ipam": {"type": "host-local", "subnet": "10.22.0.0/16"}}


@pytest.mark.parametrize("config, message", [
    ([1], "a JSON object"),
    ({"cniVersion": "1.0.0", "name": "n", "plugins": [{"type": "bridge"}]}, '"type": None'),
    (dict(BRIDGE, type="ptp"), "\"type\": 'ptp'"),
    ({k: v for k, v in BRIDGE.items() if k != "name"}, '"name": None'),
    (dict(BRIDGE, bridge=5), '"bridge": 5'),
    (dict(BRIDGE, ipam=[]), '"ipam": []'),
    (dict(BRIDGE, ipam={"type": "dhcp"}), "\"ipam.type\": 'dhcp'"),
])
def test_an_unusable_config_exits_2_naming_the_key_and_leaves_nothing(tmp_path, monkeypatch, capsys, config,
                                                                      message):
    path = tmp_path / "net.conf"
    path.write_text(json.dumps(config))
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    assert main(["demo", "--config", str(path)]) == 2
    captured = capsys.readouterr()
    assert message in captured.err and "Traceback" not in captured.err + captured.out
    assert list(scratch.iterdir()) == []


def test_without_the_checkouts_example_it_says_to_give_a_config(monkeypatch, capsys):
    """An installed package (`pip install .`, not editable) has no examples/ beside it."""
    import cni_rkt.cli.demo

    monkeypatch.setattr(cni_rkt.cli.demo, "EXAMPLE", cni_rkt.cli.demo.Path("examples/absent/net.conf"))
    assert main(["demo"]) == 2
    assert "give --config FILE" in capsys.readouterr().err
