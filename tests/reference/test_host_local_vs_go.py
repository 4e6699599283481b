"""Ours and Debian's Go host-local on the same data: no double allocation, same bytes.

Both run inside a sandbox netns (tests/hostlocal_exec.py). Debian's
build is containernetworking-plugins 1.1.1: it writes address files with mode 0644
where we write 0600, and it knows spec versions up to 1.0.0.
"""

import os
import random

import pytest
from conftest import needs_go_plugins
from hostlocal_exec import GO_HOST_LOCAL, address_files, call, ipam_config

pytestmark = [needs_go_plugins, pytest.mark.usefixtures("host_local_sandbox")]

DUAL = {"ranges": [[{"subnet": "10.7.0.0/24"}], [{"subnet": "fd07::/120", "rangeStart": "fd07::10"}]],
        "routes": [{"dst": "0.0.0.0/0"}, {"dst": "::/0", "gw": "fd07::1"}]}
DUAL_10_1 = {"ranges": [[{"subnet": "10.1.0.0/24"}], [{"subnet": "fd01::/120"}]]}


@pytest.fixture
def ours(plugin_dir):
    return os.path.join(plugin_dir, "host-local")


def test_alternating_plugins_never_share_an_address_and_release_each_others(ours, data_dir):
    conf = ipam_config(data_dir, **DUAL)
    plugins = [ours, GO_HOST_LOCAL]
    seen = []
    for i in range(16):
        reply = call(plugins[i % 2], "ADD", conf, f"pod{i}")
        assert reply.returncode == 0, reply.stdout
        seen += [ip["address"] for ip in reply.json()["ips"]]
    assert len(seen) == len(set(seen)) == 32
    for i in range(16):
        assert call(plugins[(i + 1) % 2], "DEL", conf, f"pod{i}").returncode == 0  # the other one releases
    assert sorted(os.listdir(os.path.join(data_dir, "net1"))) == ["last_reserved_ip.0", "last_reserved_ip.1", "lock"]


def test_legacy_files_written_by_old_versions_are_released_by_both(ours, data_dir):
    conf = ipam_config(data_dir)
    net = os.path.join(data_dir, "net1")
    os.makedirs(net)
    for name, cid in (("10.1.0.20", "old-a"), ("10.1.0.21", "old-b")):
        with open(os.path.join(net, name), "w") as f:
            f.write(cid)
    assert call(ours, "DEL", conf, "old-a").returncode == 0
    assert call(GO_HOST_LOCAL, "DEL", conf, "old-b").returncode == 0
    assert address_files(net) == {}


@pytest.mark.parametrize("command", ["ADD", "DEL", "CHECK"])
@pytest.mark.parametrize("container_id", ["", "bad id", "-x"])
def test_empty_or_invalid_container_id_is_the_same_error(ours, data_dir, command, container_id):
    conf = ipam_config(data_dir)
    go, mine = (call(plugin, command, conf, container_id) for plugin in (GO_HOST_LOCAL, ours))
    assert go.returncode == mine.returncode == 1
    fields = ("code", "msg", "details")
    assert [mine.json().get(f) for f in fields] == [go.json().get(f) for f in fields]
    assert go.json()["code"] == 4
    assert not os.path.exists(os.path.join(data_dir, "net1"))


@pytest.mark.parametrize("ipam", [{"subnet": "10.1.0.0/24", "gateway": "0.0.0.0"},
                                  {"subnet": "fd01::/120", "gateway": "::"}])
def test_an_all_zeros_gateway_is_kept_as_go_keeps_it(ours, tmp_path, ipam):
    replies, files = [], []
    for executable, name in ((GO_HOST_LOCAL, "go"), (ours, "ours")):
        conf = ipam_config(str(tmp_path / name), **ipam)
        replies.append(call(executable, "ADD", conf, "c1"))
        files.append(address_files(str(tmp_path / name / "net1")))
    assert replies[0].returncode == 0 and replies[1].stdout == replies[0].stdout
    assert files[1] == files[0]


def _history(resolv_conf: str):
    """(command, container, config keyword arguments, CNI_ARGS, extra top-level keys)."""
    small = {"subnet": "10.8.0.0/29"}  # .2-.6 usable: wraps and runs out
    dual = {**DUAL, "resolvConf": resolv_conf}
    return [
        ("ADD", "a", "1.0.0", small, "", {}),
        ("ADD", "b", "0.3.1", small, "", {}),
        ("ADD", "c", "0.4.0", small, "IgnoreUnknown=1;K8S_POD_NAME=x;IP=10.8.0.6", {}),
        ("ADD", "d", "0.2.0", small, "", {}),
        ("DEL", "b", "1.0.0", small, "", {}),
        ("ADD", "e", "0.1.0", small, "", {}),
        ("ADD", "f", "1.0.0", small, "", {}),
        ("ADD", "g", "1.0.0", small, "", {}),  # exhausted
        ("DEL", "a", "1.0.0", small, "", {}),
        ("ADD", "g", "1.0.0", small, "", {}),  # wraps to the freed address
        ("ADD", "g", "1.0.0", small, "", {}),  # duplicate
        ("ADD", "h", "1.0.0", small, "IP=10.8.0.6", {}),  # taken requested address
        ("ADD", "x", "1.0.0", dual, "", {}),
        ("ADD", "y", "0.3.0", dual, "", {"args": {"cni": {"ips": ["fd07::77"]}}}),
        ("ADD", "z", "0.2.0", dual, "", {"runtimeConfig": {"ips": ["10.7.0.99/24"]}}),
        ("DEL", "x", "1.0.0", dual, "", {}),
        ("ADD", "w", "1.0.0", dual, "", {}),
    ]


def _replay(executable: str, data_dir: str, resolv_conf: str) -> list:
    outputs = []
    for command, cid, version, ipam, cni_args, top in _history(resolv_conf):
        conf = {**ipam_config(data_dir, version, name="dual" if "ranges" in ipam else "small", **ipam), **top}
        reply = call(executable, command, conf, cid, cni_args=cni_args)
        outputs.append(reply.stdout if reply.returncode == 0 else ("error", reply.json()["msg"]))
    return outputs


def test_same_history_gives_the_same_bytes_and_files(ours, tmp_path):
    resolv = tmp_path / "resolv.conf"
    resolv.write_text("nameserver 192.0.2.53\nsearch example.org\noptions ndots:2\n")
    go_dir, our_dir = str(tmp_path / "go"), str(tmp_path / "ours")
    go_outputs = _replay(GO_HOST_LOCAL, go_dir, str(resolv))
    our_outputs = _replay(ours, our_dir, str(resolv))
    for step, (theirs, mine) in enumerate(zip(go_outputs, our_outputs, strict=True)):
        assert mine == theirs, f"step {step}: {_history('')[step][:2]}"
    assert [o for o in go_outputs if isinstance(o, tuple)] == [
        ("error", "failed to allocate for range 0: no IP addresses available in range set: 10.8.0.1-10.8.0.6"),
        ("error", "failed to allocate for range 0: 10.8.0.2 has been allocated to g, duplicate allocation is not allowed"),
        ("error", "failed to allocate for range 0: requested IP address 10.8.0.6 is not available in range set "
                  "10.8.0.1-10.8.0.6"),
    ]
    for network in ("small", "dual"):
        go_net, our_net = os.path.join(go_dir, network), os.path.join(our_dir, network)
        assert address_files(our_net) == address_files(go_net)
        for name in os.listdir(go_net):
            with open(os.path.join(go_net, name), "rb") as theirs, open(os.path.join(our_net, name), "rb") as mine:
                assert mine.read() == theirs.read(), name


TRICKY = {"ranges": [
    [{"subnet": "10.9.0.0/28", "rangeStart": "10.9.0.3", "rangeEnd": "10.9.0.9", "gateway": "10.9.0.5"},
     {"subnet": "10.9.1.0/29", "gateway": "10.9.1.6"}],
    [{"subnet": "fd09::/125"}],
]}


def test_random_history_on_a_tricky_range_set_matches_step_by_step(ours, tmp_path):
    """Gateways inside ranges, two ranges in a set, tiny sets that wrap and run out."""
    rng = random.Random(3)
    held: set[str] = set()
    for step in range(40):
        if held and rng.random() < 0.4:
            command, cid, cni_args = "DEL", rng.choice(sorted(held)), ""
        else:
            command, cid = "ADD", f"c{rng.randrange(30)}"
            cni_args = f"IP=10.9.{rng.choice([0, 1])}.{rng.randrange(1, 9)}" if rng.random() < 0.2 else ""
        outputs = []
        for executable, name in ((GO_HOST_LOCAL, "go"), (ours, "ours")):
            conf = ipam_config(str(tmp_path / name), "0.4.0", **TRICKY)
            reply = call(executable, command, conf, cid, cni_args=cni_args)
            outputs.append(reply.stdout if reply.returncode == 0 else reply.json()["msg"])
        assert outputs[1] == outputs[0], f"step {step}: {command} {cid} {cni_args}"
        if command == "ADD" and isinstance(outputs[0], bytes):
            held.add(cid)
        elif command == "DEL":
            held.discard(cid)


def _setup_last_reserved_with_newline(net: str) -> None:
    with open(os.path.join(net, "last_reserved_ip.0"), "w") as f:
        f.write("10.1.0.100\n")  # Go's net.ParseIP refuses it: it starts again at rangeStart


def _setup_legacy_and_exact_files(net: str) -> None:
    for name, content in (("10.1.0.40", "c1"), ("10.1.0.41", "c1\r\neth0")):
        with open(os.path.join(net, name), "w") as f:
            f.write(content)


# (config keyword arguments, extra top-level keys, CNI_ARGS, command, setup of the network directory)
FOUND_BY_FUZZING = {
    "keys in any case": ({"Subnet": "10.1.0.0/24", "rangestart": "10.1.0.50",
                          "ROUTES": [{"DST": "0.0.0.0/0", "Gw": "10.1.0.1"}]},
                         {"Args": {"CNI": {"IPs": ["10.1.0.77"]}}}, "", "ADD", None),
    "IgnoreUnknown in capitals": ({}, {}, "IgnoreUnknown=TRUE;K8S_POD_NAME=x", "ADD", None),
    "requested IP with a bad prefix": ({}, {}, "IP=10.1.0.5/x", "ADD", None),
    "runtimeConfig not an object": ({}, {"runtimeConfig": ["10.1.0.9"]}, "", "ADD", None),
    "last_reserved_ip with a newline": ({}, {}, "", "ADD", _setup_last_reserved_with_newline),
    "legacy and exact files, two range sets": (DUAL_10_1, {}, "", "DEL", _setup_legacy_and_exact_files),
    "subnet null beside ranges": ({"subnet": None, **DUAL_10_1}, {}, "", "ADD", None),
    "gateway of the other family": ({"ranges": [[{"subnet": "fd01::/126", "gateway": "0.0.0.1"}],
                                                [{"subnet": "10.1.0.0/30", "gateway": "::2"}]]}, {}, "", "ADD", None),
}


@pytest.mark.parametrize("case", list(FOUND_BY_FUZZING))
def test_inputs_found_by_fuzzing_give_go_s_outcome_and_files(ours, tmp_path, case):
    ipam, top, cni_args, command, setup = FOUND_BY_FUZZING[case]
    replies, files = [], []
    for executable, name in ((GO_HOST_LOCAL, "go"), (ours, "ours")):
        conf = {**ipam_config(str(tmp_path / name), **ipam), **top}
        if "Subnet" in ipam:
            del conf["ipam"]["subnet"]  # ipam_config's default would be a second spelling of the key
        net = tmp_path / name / "net1"
        net.mkdir(parents=True)
        if setup:
            setup(str(net))
        replies.append(call(executable, command, conf, "c1", cni_args=cni_args))
        files.append({p.name: p.read_bytes() for p in net.iterdir() if p.name != "lock"})
    go, mine = replies
    assert mine.returncode == go.returncode
    if go.returncode == 0:
        assert mine.stdout == go.stdout
    assert files[1] == files[0]
