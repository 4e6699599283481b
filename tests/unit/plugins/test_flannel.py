"""The flannel plugin's verbs through run(), with the delegate faked by pytest-subprocess."""

import json
import os

import pytest

from cni_rkt.protocol.runner import run

CID = "3f1c2b5e-8a6d-4c1e-9b7a-2d4e6f8a0b1c"
GUIDE_ENV = "FLANNEL_NETWORK=10.1.0.0/16\nFLANNEL_SUBNET=10.1.17.1/24\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=true\n"
BRIDGE_RESULT_1_0 = {
    "cniVersion": "1.0.0",
    "interfaces": [{"name": "cni0", "mac": "aa:aa:aa:aa:aa:01"}, {"name": "veth1", "mac": "aa:aa:aa:aa:aa:02"},
                   {"name": "eth0", "mac": "aa:aa:aa:aa:aa:03", "sandbox": "/var/run/netns/p"}],
    "ips": [{"interface": 2, "address": "10.1.17.2/24", "gateway": "10.1.17.1"}],
    "routes": [{"dst": "10.1.0.0/16"}, {"dst": "0.0.0.0/0", "gw": "10.1.17.1"}],
    "dns": {},
}


class FakeDelegate:
    """The `bridge` on CNI_PATH, faked: each expected call answers in turn and records its stdin."""

    def __init__(self, fp, directory):
        self.fp = fp
        self.path = str(directory / "bridge")
        with open(self.path, "w") as f:
            f.write("#!/bin/sh\nexit 99\n")  # never runs: pytest-subprocess answers instead
        os.chmod(self.path, 0o755)
        self.recorders = []
        self.stdins = []
        self.on_stdin = None

    def expect(self, stdout=b"", returncode=0):
        def record(data):
            if self.on_stdin:
                self.on_stdin(data)
            self.stdins.append(json.loads(data))

        stdout = json.dumps(stdout).encode() if isinstance(stdout, dict) else stdout
        recorder = self.fp.register([self.path], stdout=stdout, returncode=returncode, stdin_callable=record)
        self.recorders.append(recorder)

    def envs(self):
        return [call.kwargs["env"] for recorder in self.recorders for call in recorder.calls]

    def commands(self):
        return [env["CNI_COMMAND"] for env in self.envs()]


@pytest.fixture
def node(tmp_path, fp):
    """A node's files (subnet.env, dataDir) and a faked delegate on CNI_PATH."""

    class Node:
        subnet_file = tmp_path / "subnet.env"
        data_dir = tmp_path / "flannel"
        delegate = FakeDelegate(fp, tmp_path)

        def config(self, **extra):
            base = {"cniVersion": "1.0.0", "name": "cbr", "type": "flannel",
                    "subnetFile": str(self.subnet_file), "dataDir": str(self.data_dir)}
            return {**base, **extra}

        def run(self, command, config, ifname="eth0", container_id=CID, **env):
            environ = {"CNI_COMMAND": command, "CNI_CONTAINERID": container_id, "CNI_NETNS": "/var/run/netns/p",
                       "CNI_IFNAME": ifname, "CNI_PATH": str(tmp_path), "CNI_RKT_INPROCESS_DELEGATE": "0", **env}
            stdin = config if isinstance(config, bytes) else json.dumps(config).encode()
            out, code = run("flannel", environ, stdin)
            return (json.loads(out) if out else None), code

        def saved(self):
            return sorted(os.listdir(self.data_dir)) if self.data_dir.exists() else []

    node = Node()
    node.subnet_file.write_text(GUIDE_ENV)
    return node


# --- ADD --------------------------------------------------------------------------------


def test_add_saves_the_delegate_config_before_the_delegate_runs_and_returns_its_result(node):
    seen_saved = []
    node.delegate.on_stdin = lambda data: seen_saved.append((node.data_dir / f"{CID}@eth0").read_bytes() == data)
    node.delegate.expect(BRIDGE_RESULT_1_0)
    out, code = node.run("ADD", node.config(delegate={"isDefaultGateway": True}))
    assert (code, out) == (0, BRIDGE_RESULT_1_0)
    assert seen_saved == [True]
    assert node.delegate.commands() == ["ADD"]
    sent = node.delegate.stdins[0]
    assert (sent["type"], sent["name"], sent["cniVersion"]) == ("bridge", "cbr", "1.0.0")
    assert (sent["ipMasq"], sent["mtu"]) == (False, 1450)
    assert sent["ipam"]["ranges"] == [[{"subnet": "10.1.17.0/24"}]]


def test_add_as_rkt_sends_no_cni_version_and_prints_ip4(node):
    config = {"name": "rkt.kubernetes.io", "type": "flannel", "subnetFile": str(node.subnet_file),
              "dataDir": str(node.data_dir), "delegate": {"isDefaultGateway": True}}
    legacy = {"cniVersion": "0.1.0", "ip4": {"ip": "10.1.17.2/24", "gateway": "10.1.17.1",
                                             "routes": [{"dst": "10.1.0.0/16"}]}, "dns": {}}
    node.delegate.expect(legacy)
    out, code = node.run("ADD", config, CNI_VERSION="0.1.0")
    assert (code, out) == (0, legacy)
    assert "cniVersion" not in node.delegate.stdins[0]


def test_add_renders_the_delegate_result_in_the_flannel_config_version(node):
    node.delegate.expect(BRIDGE_RESULT_1_0)  # a delegate answering in a newer version than asked
    out, code = node.run("ADD", node.config(cniVersion="0.3.1"))
    assert code == 0 and out["cniVersion"] == "0.3.1" and out["ips"][0]["version"] == "4"


def test_failed_delegate_add_is_undone_then_its_error_returned(node):
    error = {"code": 11, "msg": "failed to allocate for range 0: no IP addresses available"}
    node.delegate.expect(error, returncode=1)
    node.delegate.expect()  # the undo's DEL
    out, code = node.run("ADD", node.config())
    assert (code, out["code"], out["msg"]) == (1, 11, error["msg"])
    assert node.delegate.commands() == ["ADD", "DEL"]
    assert node.delegate.stdins[1] == node.delegate.stdins[0]  # DEL with the config ADD was given
    assert node.saved() == []


def test_failed_undo_keeps_the_saved_config_for_the_runtimes_del(node, capsys):
    node.delegate.expect({"code": 999, "msg": "add broke"}, returncode=1)
    node.delegate.expect({"code": 999, "msg": "del broke too"}, returncode=1)
    out, code = node.run("ADD", node.config())
    assert (code, out["msg"]) == (1, "add broke")
    assert node.saved() == [CID, f"{CID}@eth0"]
    assert "del broke too" in capsys.readouterr().err


def test_result_rkt_cannot_read_is_undone(node):
    l2_only = {"cniVersion": "0.1.0", "dns": {}}  # no IP: nothing to print as ip4
    node.delegate.expect(l2_only)
    node.delegate.expect()
    out, code = node.run("ADD", node.config(cniVersion="0.1.0"))
    assert code == 1 and out["msg"] == "cannot convert: no valid IP addresses"
    assert node.delegate.commands() == ["ADD", "DEL"] and node.saved() == []


def test_missing_subnet_env_is_try_again_later_and_touches_nothing(node):
    node.subnet_file.unlink()
    out, code = node.run("ADD", node.config())
    assert (code, out["code"]) == (1, 11)
    assert str(node.subnet_file) in out["msg"]
    assert node.delegate.commands() == [] and node.saved() == []


def test_delegate_name_is_rejected_before_anything_is_written(node):
    out, code = node.run("ADD", node.config(delegate={"name": "x"}))
    assert (code, out["code"]) == (1, 7) and node.saved() == []


# --- DEL --------------------------------------------------------------------------------


def test_del_uses_the_saved_config_even_after_edits_and_forgets_it(node):
    node.delegate.expect(BRIDGE_RESULT_1_0)
    node.run("ADD", node.config())
    node.subnet_file.unlink()  # flanneld gone, config edited: teardown still works
    node.delegate.expect()
    out, code = node.run("DEL", node.config(delegate={"type": "ipvlan"}, runtimeConfig={"mac": "aa:bb:cc:dd:ee:ff"}))
    assert (code, out) == (0, None)
    added, deleted = node.delegate.stdins
    assert deleted == {**added, "runtimeConfig": {"mac": "aa:bb:cc:dd:ee:ff"}}
    assert node.saved() == []


def test_del_forwards_prev_result_of_the_same_version(node):
    node.delegate.expect(BRIDGE_RESULT_1_0)
    node.run("ADD", node.config())
    node.delegate.expect()
    node.run("DEL", node.config(prevResult=BRIDGE_RESULT_1_0))
    assert node.delegate.stdins[1]["prevResult"] == BRIDGE_RESULT_1_0


def test_del_without_saved_config_succeeds_without_the_delegate(node):
    node.subnet_file.unlink()
    assert node.run("DEL", node.config()) == (None, 0)
    assert node.delegate.commands() == []


def test_del_does_not_need_a_usable_subnet_file_and_an_empty_data_dir_holds_nothing(node):
    # The reference's DEL never opens subnetFile, and an ADD with dataDir "" saves nothing
    # (it fails), so a runtime's teardown of such a pod must not fail on either.
    node.delegate.expect(BRIDGE_RESULT_1_0)
    node.run("ADD", node.config())
    node.delegate.expect()
    assert node.run("DEL", node.config(subnetFile="")) == (None, 0)
    assert node.delegate.commands() == ["ADD", "DEL"] and node.saved() == []
    assert node.run("DEL", node.config(dataDir="")) == (None, 0)
    assert node.delegate.commands() == ["ADD", "DEL"]


@pytest.mark.parametrize("key", ["subnetFile", "dataDir"])
def test_add_refuses_an_empty_path_naming_the_key(node, key):
    out, code = node.run("ADD", node.config(**{key: ""}))
    assert (code, out["code"], out["msg"], out["details"]) == (1, 7, f"{key} must not be empty", key)
    assert node.delegate.commands() == [] and node.saved() == []


def test_failed_delegate_del_keeps_the_saved_config_for_a_retry(node):
    node.delegate.expect(BRIDGE_RESULT_1_0)
    node.run("ADD", node.config())
    node.delegate.expect({"code": 999, "msg": "iptables busy"}, returncode=1)
    out, code = node.run("DEL", node.config())
    assert (code, out["msg"]) == (1, "iptables busy")
    assert node.saved() == [CID, f"{CID}@eth0"]
    node.delegate.expect()
    assert node.run("DEL", node.config()) == (None, 0)
    assert node.saved() == []


def test_del_reads_the_reference_plugins_container_id_file(node):
    node.data_dir.mkdir(mode=0o700)
    reference = b'{"cniVersion":"1.0.0","ipMasq":false,"ipam":{"type":"host-local"},"name":"cbr","type":"bridge"}'
    (node.data_dir / CID).write_bytes(reference)
    node.delegate.expect()
    assert node.run("DEL", node.config()) == (None, 0)
    assert node.delegate.stdins == [json.loads(reference)]
    assert node.saved() == []


def test_two_attachments_of_one_container_are_deleted_with_their_own_configs(node):
    node.delegate.expect(BRIDGE_RESULT_1_0)
    node.delegate.expect(BRIDGE_RESULT_1_0)
    node.run("ADD", node.config(name="net-a"), ifname="eth0")
    node.run("ADD", node.config(name="net-b"), ifname="eth1")
    node.delegate.expect()
    node.delegate.expect()
    node.run("DEL", node.config(name="net-a"), ifname="eth0")
    node.run("DEL", node.config(name="net-b"), ifname="eth1")
    assert [s["name"] for s in node.delegate.stdins] == ["net-a", "net-b", "net-a", "net-b"]
    assert node.saved() == []


def test_unparseable_saved_config_is_dropped_and_del_succeeds(node, capsys):
    node.data_dir.mkdir()
    (node.data_dir / f"{CID}@eth0").write_bytes(b"{garbage")
    assert node.run("DEL", node.config()) == (None, 0)
    assert node.saved() == [] and "not a delegate config" in capsys.readouterr().err


# --- CHECK, STATUS, GC --------------------------------------------------------------------


def test_check_delegates_with_the_saved_config_and_prev_result(node):
    node.delegate.expect(BRIDGE_RESULT_1_0)
    node.run("ADD", node.config())
    node.delegate.expect()
    assert node.run("CHECK", node.config(prevResult=BRIDGE_RESULT_1_0)) == (None, 0)
    assert node.delegate.commands() == ["ADD", "CHECK"]
    assert node.delegate.stdins[1] == {**node.delegate.stdins[0], "prevResult": BRIDGE_RESULT_1_0}


def test_check_reports_the_delegates_failure(node):
    node.delegate.expect(BRIDGE_RESULT_1_0)
    node.run("ADD", node.config())
    node.delegate.expect({"code": 999, "msg": "Failed to match addr 10.1.17.2/24 on interface eth0"}, returncode=1)
    out, code = node.run("CHECK", node.config(prevResult=BRIDGE_RESULT_1_0))
    assert (code, out["msg"]) == (1, "Failed to match addr 10.1.17.2/24 on interface eth0")


def test_check_of_an_unknown_attachment_fails(node):
    out, code = node.run("CHECK", node.config(prevResult=BRIDGE_RESULT_1_0))
    assert (code, out["code"]) == (1, 3) and str(node.data_dir) in out["msg"]


def test_status_without_subnet_env_is_50(node):
    node.subnet_file.unlink()
    out, code = node.run("STATUS", node.config(cniVersion="1.1.0"))
    assert (code, out["code"]) == (1, 50) and str(node.subnet_file) in out["msg"]
    assert node.delegate.commands() == []


def test_status_is_forwarded_to_the_delegate(node):
    node.delegate.expect({"code": 50, "msg": "range exhausted"}, returncode=1)
    out, code = node.run("STATUS", node.config(cniVersion="1.1.0"))
    assert (code, out["code"], out["msg"]) == (1, 50, "range exhausted")
    assert node.delegate.commands() == ["STATUS"] and node.delegate.stdins[0]["type"] == "bridge"


def test_gc_deletes_stale_attachments_of_this_network_then_forwards_gc(node):
    for cid, name in (("live", "cbr"), ("stale", "cbr"), ("other", "other-net")):
        node.delegate.expect(BRIDGE_RESULT_1_0)
        node.run("ADD", node.config(name=name), container_id=cid)
    node.delegate.expect()  # DEL of stale
    node.delegate.expect()  # GC
    valid = [{"containerID": "live", "ifname": "eth0"}]
    assert node.run("GC", node.config(cniVersion="1.1.0", **{"cni.dev/valid-attachments": valid})) == (None, 0)
    assert node.delegate.commands()[3:] == ["DEL", "GC"]
    del_env = node.delegate.envs()[3]
    assert (del_env["CNI_CONTAINERID"], del_env["CNI_IFNAME"], del_env["CNI_NETNS"]) == ("stale", "eth0", "")
    assert node.delegate.stdins[4]["cni.dev/valid-attachments"] == valid
    assert node.saved() == ["live", "live@eth0", "other", "other@eth0"]


def test_gc_without_valid_attachments_removes_nothing(node):
    node.delegate.expect(BRIDGE_RESULT_1_0)
    node.run("ADD", node.config())
    out, code = node.run("GC", node.config(cniVersion="1.1.0"))
    assert (code, out["code"]) == (1, 7) and "cni.dev/valid-attachments" in out["msg"]
    assert node.saved() == [CID, f"{CID}@eth0"]


def test_repeated_add_that_fails_leaves_the_first_attachment_alone(node):
    node.delegate.expect(BRIDGE_RESULT_1_0)
    node.run("ADD", node.config())
    first = (node.data_dir / f"{CID}@eth0").read_bytes()
    node.delegate.expect({"code": 999, "msg": "container veth name provided (eth0) already exists"}, returncode=1)
    out, code = node.run("ADD", node.config(delegate={"hairpinMode": True}))
    assert (code, out["msg"]) == (1, "container veth name provided (eth0) already exists")
    assert node.delegate.commands() == ["ADD", "ADD"]  # no DEL of the working attachment
    assert (node.data_dir / f"{CID}@eth0").read_bytes() == first


def test_failed_add_over_a_reference_attachment_keeps_it(node):
    node.data_dir.mkdir(mode=0o700)
    (node.data_dir / CID).write_bytes(b'{"name":"cbr","type":"bridge"}')
    node.delegate.expect({"code": 999, "msg": "already exists"}, returncode=1)
    out, code = node.run("ADD", node.config())
    assert code == 1 and node.delegate.commands() == ["ADD"]
    assert node.saved() == [CID]


def test_missing_delegate_plugin_fails_before_anything_is_saved(node):
    out, code = node.run("ADD", node.config(delegate={"type": "nonexistent"}))
    assert (code, out["code"]) == (1, 7) and 'failed to find plugin "nonexistent"' in out["msg"]
    assert node.saved() == []


def test_gc_drops_the_reference_files_of_gone_containers_after_the_delegates_gc(node):
    node.data_dir.mkdir(mode=0o700)
    for cid in ("gone", "live"):
        (node.data_dir / cid).write_bytes(b'{"name":"cbr","type":"bridge"}')  # written by the reference
    node.delegate.expect()  # GC only: the reference's files name no interface to DEL
    valid = [{"containerID": "live", "ifname": "eth0"}]
    assert node.run("GC", node.config(cniVersion="1.1.0", **{"cni.dev/valid-attachments": valid})) == (None, 0)
    assert node.delegate.commands() == ["GC"] and node.saved() == ["live"]


def test_gc_keeps_going_after_a_failed_del_and_reports_it_at_the_end(node):
    for cid in ("stale1", "stale2"):
        node.delegate.expect(BRIDGE_RESULT_1_0)
        node.run("ADD", node.config(), container_id=cid)
    node.delegate.expect({"code": 999, "msg": "iptables busy"}, returncode=1)
    node.delegate.expect()
    node.delegate.expect()
    out, code = node.run("GC", node.config(cniVersion="1.1.0", **{"cni.dev/valid-attachments": []}))
    assert (code, out["code"]) == (1, 999) and "iptables busy" in out["details"]
    assert node.delegate.commands()[2:] == ["DEL", "DEL", "GC"]
    assert node.saved() == ["stale1", "stale1@eth0"]  # kept for the next GC or the runtime's DEL
