"""Random and mutated input through the plugins' one entry point (runner.run), seeded;
plus a sweep putting each type-confusing value at each key, and every kind of delegate answer.

Whatever a runtime or an operator's typo sends, the answer is the spec's: an error JSON
object on stdout with exit 1 (or a result / nothing with exit 0), and never the catch-all
"unexpected error" with a traceback on stderr. Writes stay inside this test's temp dir:
dataDir, subnetFile and CNI_PATH are pinned there; flannel's delegate is faked with
pytest-subprocess, so nothing reaches a real bridge.
"""

from __future__ import annotations

import collections
import copy
import json
import os
import random

import pytest

from cni_rkt.protocol.runner import run

CASES = 300

WEIRD_VALUES = [
    None, True, False, 0, -1, 1.5, 2**64, "", " ", "x", "/", "..", "../..", "\u0000", "\udcff", "é",
    "10.0.0.0/33", "10.0.0.1/24", "10.0.0.0/31", "::/0", "fd00::/127", "fd00::1", "0.0.0.0/0",
    "10.9.0.5", "300.1.1.1", "1.2.3.4/-1", "1.2.3.4/ 8", [], {}, [[]], [{}], [None], [["x"]],
    {"subnet": 5}, [[{"subnet": "10.9.0.0/24"}]], [[{"subnet": "fd00:9::/64"}]],
    [{"dst": "0.0.0.0/0", "gw": []}], [{"dst": "0.0.0.0/0", "mtu": "9000"}], {"ips": ["10.9.0.7/24", 3]},
    {"cni": {"ips": ["10.9.0.9"]}}, {"cni": {"ips": "10.9.0.9"}}, [{"containerID": "c"}], [{"containerID": 1}],
    [{"containerID": "c", "ifname": []}], [{"containerID": "c", "ifname": {}}],
]

HOST_LOCAL_BASES = [
    {"cniVersion": "1.1.0", "name": "fuzz", "type": "host-local",
     "ipam": {"type": "host-local", "subnet": "10.9.0.0/28", "rangeStart": "10.9.0.2", "rangeEnd": "10.9.0.9",
              "gateway": "10.9.0.1", "routes": [{"dst": "0.0.0.0/0"}, {"dst": "10.0.0.0/8", "gw": "10.9.0.1"}]}},
    {"cniVersion": "0.3.1", "name": "fuzz", "type": "host-local",
     "ipam": {"type": "host-local", "ranges": [[{"subnet": "10.9.1.0/29"}, {"subnet": "10.9.2.0/29"}],
                                               [{"subnet": "fd00:9::/120"}]]},
     "args": {"cni": {"ips": ["10.9.1.3"]}}, "runtimeConfig": {"ips": ["fd00:9::5/120"]}},
    {"name": "fuzz", "ipam": {"subnet": "10.9.3.0/30"}},
    {"cniVersions": ["0.4.0", "1.1.0"], "name": "fuzz", "type": "host-local",
     "ipam": {"type": "host-local", "subnet": "10.9.4.0/24"}, "runtimeConfig": {"ipRanges": [[{"subnet": "10.9.5.0/24"}]]},
     "cni.dev/valid-attachments": [{"containerID": "c1", "ifname": "eth0"}],
     "prevResult": {"cniVersion": "1.1.0", "ips": [{"address": "10.9.5.1/24"}]}},
]

FLANNEL_BASES = [
    {"name": "rkt.kubernetes.io", "type": "flannel", "delegate": {"isDefaultGateway": True}},
    {"cniVersion": "1.1.0", "name": "cbr0", "type": "flannel",
     "delegate": {"hairpinMode": True, "mtu": 1400, "type": "bridge"},
     "ipam": {"type": "host-local", "routes": [{"dst": "192.168.0.0/16"}]},
     "runtimeConfig": {"portMappings": []},
     "cni.dev/valid-attachments": [{"containerID": "c1", "ifname": "eth0"}],
     "prevResult": {"cniVersion": "1.1.0", "ips": [{"address": "10.1.17.2/24"}]}},
]

SUBNET_ENVS = [
    "FLANNEL_NETWORK=10.1.0.0/16\nFLANNEL_SUBNET=10.1.17.1/24\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=true\n",
    "FLANNEL_NETWORK=10.1.0.0/16,10.2.0.0/16\nFLANNEL_SUBNET=10.1.17.1/24\nFLANNEL_IPV6_NETWORK=fd00:1::/56\n"
    "FLANNEL_IPV6_SUBNET=fd00:1:0:11::1/64\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=false\n",
]

DELEGATE_ANSWERS = [
    (0, b'{"cniVersion":"1.1.0","interfaces":[{"name":"eth0"}],"ips":[{"address":"10.1.17.2/24","interface":0}],'
        b'"routes":[{"dst":"10.1.0.0/16"}],"dns":{}}'),
    (0, b'{"cniVersion":"0.2.0","ip4":{"ip":"10.1.17.2/24"}}'),
    (0, b""),
    (0, b"not json"),
    (0, b'{"cniVersion":"1.1.0","ips":[{"address":"nonsense"}]}'),
    (0, b'{"cniVersion":"1.1.0","ips":"x","routes":[1]}'),
    (0, b"[1,2]"),
    (1, b'{"code":7,"msg":"bad"}'),
    (1, b'{"code":"x"}'),
    (1, b""),
    (2, b"\xff\xfe"),
]


def _paths(obj, prefix=()):
    """Every (container, key) position inside a JSON value."""
    items = obj.items() if isinstance(obj, dict) else enumerate(obj) if isinstance(obj, list) else ()
    for key, value in items:
        yield prefix + (key,)
        yield from _paths(value, prefix + (key,))


def _container(doc, path):
    for key in path[:-1]:
        doc = doc[key]
    return doc


def mutate_config(rng: random.Random, base: dict) -> dict:
    doc = copy.deepcopy(base)
    for _ in range(rng.choice([0, 1, 1, 2, 3])):
        paths = list(_paths(doc))
        if not paths:
            break
        path = rng.choice(paths)
        holder = _container(doc, path)
        action = rng.random()
        if action < 0.55:
            holder[path[-1]] = copy.deepcopy(rng.choice(WEIRD_VALUES))
        elif action < 0.75 and isinstance(holder, dict):
            del holder[path[-1]]
        elif isinstance(holder, dict):
            holder[rng.choice(["cniVersion", "name", "ipam", "subnet", "ranges", "routes", "delegate", "type",
                               "dataDir", "subnetFile", "prevResult", "cni.dev/attachments", "zz"])] = copy.deepcopy(
                rng.choice(WEIRD_VALUES))
    return doc


def mutate_bytes(rng: random.Random, data: bytes) -> bytes:
    choice = rng.random()
    if choice < 0.3:
        return data[: rng.randrange(len(data) + 1)]
    if choice < 0.6:
        buf = bytearray(data)
        for _ in range(rng.randint(1, 4)):
            buf[rng.randrange(len(buf))] = rng.randrange(256)
        return bytes(buf)
    if choice < 0.8:
        return rng.choice([b"", b"null", b"[]", b"1", b'"s"', b"{}", b"\xff\xfe{"])
    return data


ENV_VALUES = {
    "CNI_COMMAND": ["ADD", "DEL", "CHECK", "STATUS", "GC", "VERSION", "", "add", "FOO"],
    "CNI_CONTAINERID": ["c1", "c2", "", "-x", "a/b", "../../etc", "a@b", "a b", "x" * 300, "c\r\neth9", "é"],
    "CNI_IFNAME": ["eth0", "eth1", "", ".", "..", "a/b", "eth0:1", "e" * 16, "e\n", "\u00e9th0"],
    "CNI_NETNS": ["/var/run/netns/fuzz-none", "", "relative"],
    "CNI_ARGS": ["", "IP=10.9.0.5", "IgnoreUnknown=1;K8S_POD_NAME=x", "IP=nonsense", "a=b=c", ";", "IP=",
                 "IgnoreUnknown=maybe", "IP=fd00:9::7/64", "MAC=aa:bb"],
}


def valid_environ(verb: str, cni_path: str, container_id: str = "c1") -> dict[str, str]:
    environ = {name: values[0] for name, values in ENV_VALUES.items()}
    environ.update(CNI_COMMAND=verb, CNI_CONTAINERID=container_id, CNI_PATH=cni_path, CNI_RKT_INPROCESS_DELEGATE="0")
    return environ


def mutate_environ(rng: random.Random, cni_path: str) -> dict[str, str]:
    """A valid environment for a random verb, then (often) one variable changed or dropped."""
    environ = valid_environ(rng.choice(ENV_VALUES["CNI_COMMAND"][:5]), cni_path, rng.choice(["c1", "c2"]))
    if rng.random() < 0.5:
        name = rng.choice(sorted(ENV_VALUES))
        if rng.random() < 0.2:
            del environ[name]
        else:
            environ[name] = rng.choice(ENV_VALUES[name])
    return environ


def _pin_paths(config, tmp_path, rng):
    """dataDir and subnetFile always under tmp_path, whatever the mutation did."""
    if not isinstance(config, dict):
        return
    ipam = config.get("ipam")
    if isinstance(ipam, dict):
        ipam["dataDir"] = str(tmp_path / rng.choice(["ipam", "ipam/sub", "ipam-file"]))
    config["dataDir"] = str(tmp_path / rng.choice(["flannel", "flannel-file"]))
    config["subnetFile"] = str(tmp_path / rng.choice(["subnet.env", "missing.env", "flannel"]))


def assert_spec_answer(out: bytes, code: int, err: str, case: str) -> None:
    assert ": unexpected error\n" not in err, f"{case}: the runner's catch-all was reached\n{err}"
    assert code in (0, 1), case
    if code == 1:
        reply = json.loads(out)
        assert isinstance(reply["code"], int) and isinstance(reply["msg"], str) and reply["msg"], case
        assert not reply["msg"].startswith("internal error in"), case  # the runner's catch-all
    elif out:
        json.loads(out)


def _stdin_for(rng, config, tmp_path) -> bytes:
    """The config's bytes, sometimes damaged; a damaged copy that still decodes is re-pinned."""
    data = json.dumps(config).encode()
    if rng.random() >= 0.25:
        return data
    damaged = mutate_bytes(rng, data)
    try:
        decoded = json.loads(damaged)
    except (ValueError, UnicodeDecodeError):
        return damaged
    _pin_paths(decoded, tmp_path, rng)  # a flipped byte must not turn /tmp/... into /tmq/...
    return json.dumps(decoded).encode()


@pytest.fixture
def fuzz_dirs(tmp_path, monkeypatch):
    """tmp_path as the working directory and as every default location, just in case."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(os, "fsync", lambda fd: None)  # durability is not under test here; speed is
    monkeypatch.setattr("cni_rkt.ipam.config.DEFAULT_DATA_DIR", str(tmp_path / "default-ipam"))
    monkeypatch.setattr("cni_rkt.flannel.config.DEFAULT_DATA_DIR", str(tmp_path / "default-flannel"))
    monkeypatch.setattr("cni_rkt.flannel.config.DEFAULT_SUBNET_FILE", str(tmp_path / "default.env"))
    (tmp_path / "ipam-file").write_text("not a directory")
    (tmp_path / "flannel-file").write_text("not a directory")
    return tmp_path


def bridge_on_cni_path(directory) -> str:
    bridge = directory / "bridge"
    bridge.write_text("#!/bin/sh\nexit 99\n")  # never runs: pytest-subprocess answers for it
    bridge.chmod(0o755)
    return str(bridge)


def test_host_local_answers_any_input_by_the_spec(fuzz_dirs, capsys):
    rng = random.Random(20261126)
    answers = collections.Counter()
    for case_no in range(CASES):
        config = mutate_config(rng, rng.choice(HOST_LOCAL_BASES))
        _pin_paths(config, fuzz_dirs, rng)
        environ = mutate_environ(rng, "/nonexistent")
        out, code = run("host-local", environ, _stdin_for(rng, config, fuzz_dirs))
        assert_spec_answer(out, code, capsys.readouterr().err, f"host-local case {case_no}")
        answers[(environ.get("CNI_COMMAND"), code)] += 1
    assert answers["ADD", 0] and answers["DEL", 0] and answers["GC", 0], answers  # the fuzz reaches the verbs


def test_flannel_answers_any_input_by_the_spec(fuzz_dirs, fp, capsys):
    rng = random.Random(4242)
    answers = collections.Counter()
    bridge = bridge_on_cni_path(fuzz_dirs)
    for case_no in range(CASES):
        subnet_env = rng.choice(SUBNET_ENVS).encode()
        (fuzz_dirs / "subnet.env").write_bytes(mutate_bytes(rng, subnet_env) if rng.random() < 0.3 else subnet_env)
        config = mutate_config(rng, rng.choice(FLANNEL_BASES))
        _pin_paths(config, fuzz_dirs, rng)
        environ = mutate_environ(rng, str(fuzz_dirs))
        with fp.context() as delegate:
            first = rng.choice(DELEGATE_ANSWERS[:2] if rng.random() < 0.5 else DELEGATE_ANSWERS)
            for returncode, stdout in [first, *rng.sample(DELEGATE_ANSWERS, 2)]:  # ADD, an undo's DEL, ...
                delegate.register([bridge], stdout=stdout, returncode=returncode)
            out, code = run("flannel", environ, _stdin_for(rng, config, fuzz_dirs))
        assert_spec_answer(out, code, capsys.readouterr().err, f"flannel case {case_no}")
        answers[(environ.get("CNI_COMMAND"), code)] += 1
    assert answers["ADD", 0] and answers["DEL", 0] and answers["GC", 0], answers  # the fuzz reaches the verbs


# --- every leaf, every type: a systematic sweep besides the random walk ----------------------

TYPE_CONFUSERS = [None, 0, "", "\udcff", "nonsense", [], {}]
VERBS = ["ADD", "DEL", "CHECK", "STATUS", "GC"]


def single_leaf_mutations(base: dict):
    for path in _paths(base):
        for value in TYPE_CONFUSERS:
            doc = copy.deepcopy(base)
            _container(doc, path)[path[-1]] = copy.deepcopy(value)
            yield path, value, doc


def _sweep(plugin, bases, fuzz_dirs, capsys, cni_path):
    rng = random.Random(7)
    for base in bases:
        for path, value, config in single_leaf_mutations(base):
            _pin_paths(config, fuzz_dirs, rng)
            for verb in VERBS:
                out, code = run(plugin, valid_environ(verb, cni_path), json.dumps(config).encode())
                assert_spec_answer(out, code, capsys.readouterr().err, f"{plugin} {verb} {path}={value!r}")


def test_host_local_survives_each_leaf_of_each_type(fuzz_dirs, capsys):
    _sweep("host-local", HOST_LOCAL_BASES, fuzz_dirs, capsys, "/nonexistent")


def fake_bridge(fp, directory, answer):
    """The delegate on CNI_PATH giving the same answer to every call."""
    returncode, stdout = answer
    fp.register([bridge_on_cni_path(directory)], stdout=stdout, returncode=returncode, occurrences=10**6)


def test_flannel_survives_each_leaf_of_each_type(fuzz_dirs, fp, capsys):
    (fuzz_dirs / "subnet.env").write_text(SUBNET_ENVS[1])
    fake_bridge(fp, fuzz_dirs, DELEGATE_ANSWERS[0])
    _sweep("flannel", FLANNEL_BASES, fuzz_dirs, capsys, str(fuzz_dirs))


@pytest.mark.parametrize("answer", DELEGATE_ANSWERS, ids=lambda a: repr(a[1][:24]))
def test_flannel_survives_whatever_its_delegate_prints(answer, fuzz_dirs, fp, capsys):
    (fuzz_dirs / "subnet.env").write_text(SUBNET_ENVS[1])
    fake_bridge(fp, fuzz_dirs, answer)
    for base in FLANNEL_BASES:
        base = {**base, "subnetFile": str(fuzz_dirs / "subnet.env"), "dataDir": str(fuzz_dirs / "flannel")}
        for verb in VERBS:
            out, code = run("flannel", valid_environ(verb, str(fuzz_dirs)), json.dumps(base).encode())
            assert_spec_answer(out, code, capsys.readouterr().err, f"flannel {verb} with {answer}")
