"""Mutated bridge configs, fixed seed and bounded count, through `runner.run` inside a sandbox.

Whatever the config, ADD answers with the spec's error JSON (or a result), never an
unexpected exception; a refused ADD leaves the sandbox exactly as it was, and an accepted
one is undone by DEL. The plugin runs in this process, inside the sandbox host netns.
"""

from __future__ import annotations

import copy
import json
import random

from cni_rkt.errors import ErrorCode
from cni_rkt.net import netns
from cni_rkt.protocol import runner

SEED = 20261126
CASES = 60
BOOL = [True, False, None]
# Every key of the reference bridge, a few of its IPAM's and the common ones, each with
# values near its valid range; any key may also get a value of the wrong type.
KEY_VALUES = {
    "bridge": ["tbr1", "x" * 15, "x" * 16, "", "br/0", "tbr\u00e90", "lo", None],
    "isGateway": BOOL, "isDefaultGateway": BOOL, "forceAddress": BOOL, "ipMasq": BOOL,
    "hairpinMode": BOOL, "promiscMode": BOOL, "enabledad": BOOL, "macspoofchk": BOOL,
    "disableContainerInterface": BOOL, "portIsolation": BOOL, "preserveDefaultVlan": BOOL,
    "ipMasqBackend": ["iptables", "nftables", "", "ebtables"],
    "mtu": [0, 67, 68, 1280, 9000, 65535, 65536, -1],
    "vlan": [0, 1, 4094, 4095, -1],
    "vlanTrunk": [[], [{"id": 7}], [{"id": 0}], [{"minID": 5}], [{"minID": 9, "maxID": 3}], [{"minID": 1, "maxID": 4094}]],
    "dns": [{}, {"nameservers": ["10.96.0.10"]}, {"nameservers": "x"}, {"domain": 3}],
    "args": [{"cni": {"mac": "02:00:00:00:00:01"}}, {"cni": {"mac": "zz"}}, {"cni": []}],
    "runtimeConfig": [{"mac": "02:00:00:00:00:02"}, {"mac": ""}, {"mac": 5}],
    "ipam": [{}, {"type": ""}, {"type": "nonexistent-ipam"}, {"type": 7}, []],
    "name": ["net-2", "", "a b"],
    "cniVersion": ["0.1.0", "0.2.0", "0.3.1", "0.4.0", "1.1.0", "9.9.9", ""],
    "ipam.subnet": ["10.22.0.0/30", "10.22.0.0/33", "fd00:22::/64", "not-a-subnet", "10.22.0.1/16"],
    "ipam.gateway": ["10.22.0.1", "10.22.0.254", "192.0.2.1", "zz"],
    "ipam.routes": [[], [{"dst": "::/0"}], [{"dst": "10.99.0.0/16", "gw": "10.22.0.9"}], [{"dst": "bad"}]],
}
WRONG_TYPE = [None, True, 1, 1.5, "true", [], [1], {}, {"type": 7}]
ERROR_CODES = {v for k, v in vars(ErrorCode).items() if k.isupper()}


def mutate(base: dict, rng: random.Random) -> dict:
    config = copy.deepcopy(base)
    for _ in range(rng.randint(1, 3)):
        key = rng.choice(sorted(KEY_VALUES))
        target, name = config, key
        if key.startswith("ipam."):
            if not isinstance(config.get("ipam"), dict):
                continue
            target, name = config["ipam"], key.split(".", 1)[1]
        if rng.random() < 0.15:
            target.pop(name, None)
        else:
            target[name] = copy.deepcopy(rng.choice(WRONG_TYPE if rng.random() < 0.2 else KEY_VALUES[key]))
    return config


def run_in_sandbox(sandbox, env: dict, stdin: bytes) -> tuple[bytes, int]:
    host = netns.open_netns(sandbox.host_path)
    try:
        with netns.entered(host):
            return runner.run("bridge", env, stdin)
    finally:
        host.close()


def test_mutated_configs_give_error_json_and_leave_nothing(sandbox, bridge, capsys):
    rng = random.Random(SEED)
    pod = sandbox.pod()
    # ipMasq leaves the nat tables it first made (empty), as the reference does: make them first
    sandbox.sh("iptables -t nat -A POSTROUTING -j RETURN && iptables -t nat -D POSTROUTING -j RETURN")
    sandbox.sh("ip6tables -t nat -A POSTROUTING -j RETURN && ip6tables -t nat -D POSTROUTING -j RETURN")
    before = bridge.state()
    accepted = 0
    for case in range(CASES):
        config = mutate(bridge.config, rng)
        if isinstance(config.get("ipam"), dict):
            config["ipam"]["dataDir"] = bridge.data_dir
        stdin = json.dumps(config).encode()
        out, code = run_in_sandbox(sandbox, bridge.env("ADD", pod, "cid-fuzz", "eth0"), stdin)
        assert "Traceback" not in capsys.readouterr().err, (case, config)
        reply = json.loads(out)
        if code == 0:
            accepted += 1
            _, del_code = run_in_sandbox(sandbox, bridge.env("DEL", pod, "cid-fuzz", "eth0"), stdin)
            assert del_code == 0, (case, config)
            made = reply["interfaces"][0]["name"] if "interfaces" in reply else config.get("bridge") or "cni0"
            sandbox.sh(f"ip link del {made} 2>/dev/null || true")  # the bridge stays after DEL
        else:
            assert reply["code"] in ERROR_CODES and reply["msg"], (case, config, reply)
        assert bridge.state() == before, (case, config, reply)
    assert 0 < accepted < CASES  # the mutations reach both sides
