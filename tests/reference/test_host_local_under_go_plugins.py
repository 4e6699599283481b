"""Our host-local as the IPAM of Go's main plugins, side by side with Go's own host-local.

host-local is the IPAM most configs name, under every main plugin (cnitool's ptp example,
macvlan, the bridge). With Go's main plugin exec'ing our host-local instead of its own, the
result, the host state after ADD, CHECK and the state after DEL must be the same.
"""

from __future__ import annotations

import json
import os

import pytest
from conftest import GO_PLUGIN_DIR, needs_go_plugins
from go_sides import RKT_CONFIG, normalise

pytestmark = needs_go_plugins

MAIN_PLUGIN_CONFIGS = {
    # cnitool's example network (corpus: cni__cnitool-10-myptp.conf)
    "ptp": {"cniVersion": "0.4.0", "name": "myptp", "type": "ptp", "ipMasq": True,
            "ipam": {"type": "host-local", "subnet": "172.16.29.0/24", "routes": [{"dst": "0.0.0.0/0"}]}},
    # dual-stack, on a master link made in the sandbox host (a veth: this kernel has no dummy)
    "macvlan": {"cniVersion": "1.0.0", "name": "lan", "type": "macvlan", "master": "lan0", "mode": "bridge",
                "ipam": {"type": "host-local", "ranges": [[{"subnet": "10.5.0.0/24"}], [{"subnet": "fd05::/120"}]],
                         "routes": [{"dst": "0.0.0.0/0"}]}},
    "bridge": dict(RKT_CONFIG, cniVersion="1.0.0"),
}


@pytest.fixture
def go_plugin_with_our_host_local(sides, tmp_path, plugin_dir):
    """Ours' side gets a plugin dir of Go's main plugins and our host-local."""
    mixed = tmp_path / "go-main-our-ipam"
    mixed.mkdir()
    for plugin in MAIN_PLUGIN_CONFIGS:
        os.symlink(os.path.join(GO_PLUGIN_DIR, plugin), mixed / plugin)
    os.symlink(os.path.join(plugin_dir, "host-local"), mixed / "host-local")
    sides[1].plugin_dir = str(mixed)
    return sides


@pytest.mark.parametrize("plugin", MAIN_PLUGIN_CONFIGS)
def test_go_main_plugin_gives_the_same_outcome_with_our_host_local(go_plugin_with_our_host_local, plugin):
    results, added, checked, after = {}, {}, {}, {}
    for side in go_plugin_with_our_host_local:
        side.sandbox.sh("ip link add lan0 type veth peer name lan1 && ip link set lan0 up")
        side.sandbox.sh("printf '*nat\\n:POSTROUTING ACCEPT [0:0]\\nCOMMIT\\n' | iptables-restore --noflush")
        config = side.config(MAIN_PLUGIN_CONFIGS[plugin])
        pod = side.sandbox.pod()
        add = side.cni("ADD", config, pod, plugin=plugin)
        assert add.returncode == 0, f"{side.name} ADD: {add.stdout!r} {add.stderr!r}"
        results[side.name] = json.loads(normalise(add.stdout.decode(), side.sandbox.prefix))
        added[side.name] = side.state()
        check = side.cni("CHECK", dict(config, prevResult=add.json()), pod, plugin=plugin)
        checked[side.name] = (check.returncode, check.stdout)
        delete = side.cni("DEL", dict(config, prevResult=add.json()), pod, plugin=plugin)
        assert delete.returncode == 0, f"{side.name} DEL: {delete.stdout!r}"
        after[side.name] = side.state()

    assert results["ours"] == results["go"]
    assert added["ours"] == added["go"]  # addresses, routes, rules and the reservation files
    assert checked["ours"] == checked["go"] == (0, b"")
    assert after["ours"] == after["go"]
