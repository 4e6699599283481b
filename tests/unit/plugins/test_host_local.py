"""host-local through run(), in-process, with a temporary dataDir."""

import fcntl
import json
import os
import subprocess
import sys

import pytest

from cni_rkt.ipam import store as store_module
from cni_rkt.plugins.host_local import reserved_ips
from cni_rkt.protocol.runner import PLUGIN_MODULES, run


@pytest.fixture
def data_dir(tmp_path):
    return str(tmp_path / "ipam")


def config(data_dir, version="1.0.0", **ipam):
    conf = {"cniVersion": version, "name": "net1", "type": "host-local",
            "ipam": {"type": "host-local", "dataDir": data_dir, **ipam}}
    if "subnet" not in ipam and "ranges" not in ipam:
        conf["ipam"]["subnet"] = "10.1.0.0/24"
    return conf


def invoke(command, conf, cid="c1", ifname="eth0", cni_args="", **top):
    env = {"CNI_COMMAND": command, "CNI_CONTAINERID": cid, "CNI_NETNS": "/var/run/netns/x",
           "CNI_IFNAME": ifname, "CNI_PATH": "/opt/cni/bin"}
    if cni_args:
        env["CNI_ARGS"] = cni_args
    out, code = run("host-local", env, json.dumps({**conf, **top}).encode())
    return out, code


def add_address(conf, cid="c1", **kw):
    out, code = invoke("ADD", conf, cid, **kw)
    assert code == 0, out
    return json.loads(out)["ips"][0]["address"]


def error(out):
    reply = json.loads(out)
    return reply["code"], reply["msg"]


def files(data_dir):
    return sorted(os.listdir(os.path.join(data_dir, "net1")))


DUAL = {"ranges": [[{"subnet": "10.1.0.0/24"}], [{"subnet": "fd00::/120", "rangeStart": "fd00::10"}]],
        "routes": [{"dst": "0.0.0.0/0"}, {"dst": "::/0", "gw": "fd00::1"}]}

ROUTES_AND_DNS = """    "routes": [
        {
            "dst": "0.0.0.0/0"
        },
        {
            "dst": "::/0",
            "gw": "fd00::1"
        }
    ],
    "dns": {
        "nameservers": [
            "192.0.2.53"
        ],
        "search": [
            "example.org"
        ]
    }
}"""

EXPECTED = {
    "0.2.0": """{
    "cniVersion": "0.2.0",
    "ip4": {
        "ip": "10.1.0.2/24",
        "gateway": "10.1.0.1",
        "routes": [
            {
                "dst": "0.0.0.0/0"
            }
        ]
    },
    "ip6": {
        "ip": "fd00::10/120",
        "gateway": "fd00::1",
        "routes": [
            {
                "dst": "::/0",
                "gw": "fd00::1"
            }
        ]
    },
    "dns": {
        "nameservers": [
            "192.0.2.53"
        ],
        "search": [
            "example.org"
        ]
    }
}""",
    "0.3.1": """{
    "cniVersion": "0.3.1",
    "ips": [
        {
            "version": "4",
            "address": "10.1.0.2/24",
            "gateway": "10.1.0.1"
        },
        {
            "version": "6",
            "address": "fd00::10/120",
            "gateway": "fd00::1"
        }
    ],
""" + ROUTES_AND_DNS,
    "1.0.0": """{
    "cniVersion": "1.0.0",
    "ips": [
        {
            "address": "10.1.0.2/24",
            "gateway": "10.1.0.1"
        },
        {
            "address": "fd00::10/120",
            "gateway": "fd00::1"
        }
    ],
""" + ROUTES_AND_DNS,
}
EXPECTED["0.1.0"] = EXPECTED["0.2.0"].replace('"0.2.0"', '"0.1.0"')
EXPECTED["0.3.0"] = EXPECTED["0.3.1"].replace('"0.3.1"', '"0.3.0"')
EXPECTED["0.4.0"] = EXPECTED["0.3.1"].replace('"0.3.1"', '"0.4.0"')
EXPECTED["1.1.0"] = EXPECTED["1.0.0"].replace('"1.0.0"', '"1.1.0"')


@pytest.mark.parametrize("version", sorted(EXPECTED))
def test_add_result_bytes_in_every_version(data_dir, tmp_path, version):
    resolv = tmp_path / "resolv.conf"
    resolv.write_text("# test\nnameserver 192.0.2.53\nsearch example.org\n")
    out, code = invoke("ADD", config(data_dir, version, resolvConf=str(resolv), **DUAL))
    assert (out.decode(), code) == (EXPECTED[version], 0)
    assert files(data_dir) == ["10.1.0.2", "fd00::10", "last_reserved_ip.0", "last_reserved_ip.1", "lock"]


def test_result_without_routes_or_dns_has_empty_dns_only(data_dir):
    out, _ = invoke("ADD", config(data_dir))
    assert json.loads(out) == {"cniVersion": "1.0.0", "ips": [{"address": "10.1.0.2/24", "gateway": "10.1.0.1"}],
                               "dns": {}}


def test_requested_ips_from_every_source(data_dir):
    conf = config(data_dir, ranges=[[{"subnet": "10.1.0.0/24"}], [{"subnet": "10.2.0.0/24"}]])
    assert add_address(conf, "a", cni_args="IgnoreUnknown=1;IP=10.1.0.77") == "10.1.0.77/24"  # and 10.2.0.2
    out, _ = invoke("ADD", conf, "b", args={"cni": {"ips": ["10.2.0.9"]}})
    assert [ip["address"] for ip in json.loads(out)["ips"]] == ["10.1.0.78/24", "10.2.0.9/24"]
    out, _ = invoke("ADD", conf, "c", runtimeConfig={"ips": ["10.1.0.5/24"], "ipRanges": [[{"subnet": "10.9.0.0/24"}]]})
    assert [ip["address"] for ip in json.loads(out)["ips"]] == ["10.9.0.2/24", "10.1.0.5/24", "10.2.0.3/24"]


@pytest.mark.parametrize(
    "ipam, cni_args, code, msg",
    [
        ({"subnet": "10.1.0.0/31"}, "", 7, "invalid range set 0: Network 10.1.0.0/31 too small to allocate from"),
        ({}, "IP=10.1.0.1", 7, "failed to allocate for range 0: requested ip 10.1.0.1 is subnet's gateway"),
        ({}, "IP=1.2.3.4", 7, "failed to allocate all requested IPs: 1.2.3.4"),
        ({}, "IP=x", 4, 'ARGS: error parsing value of pair "IP=x": invalid IP address x'),
        ({"resolvConf": "/nonexistent/resolv.conf"}, "", 7,
         "ipam.resolvConf /nonexistent/resolv.conf: No such file or directory"),
    ],
)
def test_add_errors_have_codes_and_leave_no_reservation(data_dir, ipam, cni_args, code, msg):
    out, status = invoke("ADD", config(data_dir, **ipam), cni_args=cni_args)
    assert status == 1 and error(out) == (code, msg)
    net = os.path.join(data_dir, "net1")
    assert not os.path.exists(net) or [f for f in files(data_dir) if f[0].isdigit()] == []


@pytest.mark.parametrize("cid, ifname, msg", [
    ("", "eth0", "required env variables [CNI_CONTAINERID] missing"),
    ("a/b", "eth0", "invalid characters in containerID"),
    ("..", "eth0", "invalid characters in containerID"),
    ("c1\r\nx", "eth0", "invalid characters in containerID"),
    ("c1", "../x", "interface name contains / or : or whitespace characters"),
    ("c1", "eth0\r\nx", "interface name contains / or : or whitespace characters"),
    ("c1", "..", "interface name is . or .."),
])
def test_values_that_would_forge_a_file_are_refused_before_any_reservation(data_dir, cid, ifname, msg):
    out, status = invoke("ADD", config(data_dir), cid, ifname)
    assert status == 1 and error(out) == (4, msg)
    assert not os.path.exists(data_dir)


def test_exhaustion_and_duplicate_are_reported_like_the_reference(data_dir):
    conf = config(data_dir, subnet="10.1.0.0/30")
    add_address(conf, "c1")
    assert error(invoke("ADD", conf, "c1")[0]) == (
        999, "failed to allocate for range 0: 10.1.0.2 has been allocated to c1, duplicate allocation is not allowed")
    assert error(invoke("ADD", conf, "c2")[0]) == (
        999, "failed to allocate for range 0: no IP addresses available in range set: 10.1.0.1-10.1.0.2")


def test_failed_second_range_set_releases_the_first(data_dir):
    conf = config(data_dir, ranges=[[{"subnet": "10.1.0.0/24"}], [{"subnet": "10.2.0.0/30"}]])
    add_address(conf, "c1")
    out, code = invoke("ADD", conf, "c2")
    assert code == 1 and "failed to allocate for range 1" in error(out)[1]
    assert [f for f in files(data_dir) if f[0].isdigit()] == ["10.1.0.2", "10.2.0.2"]


def test_del_releases_the_attachment_only_and_is_idempotent(data_dir):
    conf = config(data_dir, **DUAL)
    invoke("ADD", conf, "c1")
    invoke("ADD", conf, "c1", ifname="eth1")
    assert invoke("DEL", conf, "c1") == (b"", 0)
    assert [f for f in files(data_dir) if f[0].isdigit() or ":" in f] == ["10.1.0.3", "fd00::11"]
    assert invoke("DEL", conf, "c1") == (b"", 0)
    assert invoke("DEL", conf, "never-added") == (b"", 0)


def test_del_releases_legacy_files(data_dir):
    conf = config(data_dir)
    os.makedirs(os.path.join(data_dir, "net1"))
    with open(os.path.join(data_dir, "net1", "10.1.0.40"), "w") as f:
        f.write("old")
    assert invoke("DEL", conf, "old") == (b"", 0)
    assert files(data_dir) == ["lock"]


@pytest.mark.parametrize("ipam, left", [({"subnet": "10.1.0.0/24"}, ["10.1.0.40"]), (DUAL, [])])
def test_del_releases_legacy_files_beside_exact_ones_as_go_does(data_dir, ipam, left):
    """Go releases per range set: with two or more, its second pass finds only the legacy files."""
    conf = config(data_dir, **ipam)
    os.makedirs(os.path.join(data_dir, "net1"))
    for name, content in (("10.1.0.40", "c1"), ("10.1.0.41", "c1\r\neth0"), ("10.1.0.42", "c2")):
        with open(os.path.join(data_dir, "net1", name), "w") as f:
            f.write(content)
    assert invoke("DEL", conf, "c1") == (b"", 0)
    assert [f for f in files(data_dir) if f.startswith("10.")] == sorted([*left, "10.1.0.42"])


def test_data_dir_is_cleaned_as_go_cleans_it(tmp_path):
    conf = config(str(tmp_path / "never" / ".." / "ipam") + "/")
    assert add_address(conf) == "10.1.0.2/24"
    assert reserved_ips(conf, "c1", "eth0") == ["10.1.0.2"]
    assert sorted(os.listdir(tmp_path)) == ["ipam"]  # no "never" directory on the way
    assert invoke("DEL", conf) == (b"", 0)
    assert files(str(tmp_path / "ipam")) == ["last_reserved_ip.0", "lock"]


def test_del_with_invalid_config_fails(data_dir):
    out, code = invoke("DEL", config(data_dir, subnet="10.1.0.0/33"))
    assert code == 1 and error(out) == (7, "invalid range set 0: invalid CIDR address: 10.1.0.0/33")


def test_check_compares_the_reservation_with_prev_result(data_dir):
    conf = config(data_dir)
    out, _ = invoke("ADD", conf)
    prev = json.loads(out)
    assert invoke("CHECK", conf, prevResult=prev) == (b"", 0)
    assert invoke("CHECK", conf) == (b"", 0)
    other = {**prev, "ips": [{"address": "10.1.0.99/24", "gateway": "10.1.0.1"}]}
    out, code = invoke("CHECK", conf, prevResult=other)
    assert code == 1 and error(out)[1] == "host-local: addresses of container c1 do not match prevResult"
    invoke("DEL", conf)
    assert error(invoke("CHECK", conf, prevResult=prev)[0]) == (
        999, "host-local: Failed to find address added by container c1")


@pytest.mark.parametrize("broken", [{"interfaces": [{"name": 5}]}, {"ips": "x"}, {"dns": []}])
def test_check_does_not_fail_on_a_prev_result_it_cannot_read(data_dir, broken):
    """The reference reads no prevResult; ours compares the one it can read, and only then."""
    conf = config(data_dir)
    out, _ = invoke("ADD", conf)
    assert invoke("CHECK", conf, prevResult={**json.loads(out), **broken}) == (b"", 0)


def test_check_ignores_a_reservation_outside_the_configured_ranges(data_dir):
    """A file left from an older range (or written by hand) is not the prevResult's business."""
    conf = config(data_dir, subnet="10.1.0.0/24", rangeStart="10.1.0.10", rangeEnd="10.1.0.20")
    out, _ = invoke("ADD", conf)
    with open(os.path.join(data_dir, "net1", "10.1.0.200"), "w") as f:
        f.write("c1\r\neth0")
    assert invoke("CHECK", conf, prevResult=json.loads(out)) == (b"", 0)
    other = {**json.loads(out), "ips": [{"address": "10.1.0.11/24"}]}
    out, code = invoke("CHECK", conf, prevResult=other)
    assert code == 1 and json.loads(out)["details"] == "reserved [10.1.0.10], prevResult [10.1.0.11]"


def test_check_is_refused_below_0_4_0(data_dir):
    assert error(invoke("CHECK", config(data_dir, "0.3.1"))[0]) == (1, "config version does not allow CHECK")


@pytest.mark.parametrize("key", ["cni.dev/valid-attachments", "cni.dev/attachments"])
def test_gc_releases_everything_not_in_the_valid_attachments(data_dir, key):
    conf = config(data_dir, "1.1.0")
    for cid in ("keep", "drop"):
        invoke("ADD", conf, cid)
    invoke("ADD", conf, "keep", ifname="eth1")
    with open(os.path.join(data_dir, "net1", "10.1.0.50"), "w") as f:
        f.write("keep")  # legacy file of a live container
    with open(os.path.join(data_dir, "net1", "10.1.0.51"), "w") as f:
        f.write("dead")  # legacy file of a gone one
    out, code = run("host-local", {"CNI_COMMAND": "GC", "CNI_PATH": "/x"},
                    json.dumps({**conf, key: [{"containerID": "keep", "ifname": "eth0"}]}).encode())
    assert (out, code) == (b"", 0)
    assert [f for f in files(data_dir) if f[0].isdigit()] == ["10.1.0.2", "10.1.0.50"]


def test_gc_without_a_list_is_a_config_error(data_dir):
    out, code = run("host-local", {"CNI_COMMAND": "GC", "CNI_PATH": "/x"}, json.dumps(config(data_dir, "1.1.0")).encode())
    assert code == 1 and error(out)[0] == 7


@pytest.mark.parametrize("entry", [{"containerID": "c1", "ifname": ["eth0"]}, {"containerID": 7}, "c1"])
def test_gc_with_a_malformed_attachment_is_a_config_error_and_releases_nothing(data_dir, entry):
    conf = config(data_dir, "1.1.0")
    add_address(conf)
    out, code = run("host-local", {"CNI_COMMAND": "GC", "CNI_PATH": "/x"},
                    json.dumps({**conf, "cni.dev/valid-attachments": [entry]}).encode())
    assert (code, error(out)[0]) == (1, 7) and "cni.dev/valid-attachments" in error(out)[1]
    assert reserved_ips(conf, "c1", "eth0") == ["10.1.0.2"]


def test_status_is_50_when_a_range_set_is_full(data_dir):
    conf = config(data_dir, "1.1.0", ranges=[[{"subnet": "10.1.0.0/24"}], [{"subnet": "10.2.0.0/30"}]])
    status = {"CNI_COMMAND": "STATUS", "CNI_PATH": "/x"}
    assert run("host-local", status, json.dumps(conf).encode()) == (b"", 0)
    add_address(conf, "c1")
    out, code = run("host-local", status, json.dumps(conf).encode())
    assert code == 1 and error(out) == (50, "no IP addresses available in range set 1: 10.2.0.1-10.2.0.2")


def test_status_does_not_count_a_file_on_the_gateway_as_a_used_address(data_dir):
    conf = config(data_dir, "1.1.0", subnet="10.2.0.0/29")  # .2-.6 allocatable, gateway .1
    os.makedirs(os.path.join(data_dir, "net1"))
    for last in range(1, 6):  # the gateway (a file left from an older config) and .2-.5
        with open(os.path.join(data_dir, "net1", f"10.2.0.{last}"), "w") as f:
            f.write(f"old{last}")
    status = {"CNI_COMMAND": "STATUS", "CNI_PATH": "/x"}
    assert run("host-local", status, json.dumps(conf).encode()) == (b"", 0)
    assert add_address(conf, "c1") == "10.2.0.6/29"
    out, code = run("host-local", status, json.dumps(conf).encode())
    assert code == 1 and error(out)[0] == 50


def test_add_failing_after_its_claim_keeps_no_address(data_dir, monkeypatch):
    def disk_full(self, range_index, name):
        raise store_module.CNIError(5, f"host-local store: write last_reserved_ip.{range_index}: disk full")

    conf = config(data_dir, **DUAL)
    add_address(conf, "c0")
    monkeypatch.setattr(store_module.DiskStore, "_write_last_reserved", disk_full)
    out, code = invoke("ADD", conf, "c1")
    assert (code, error(out)[0]) == (1, 5)
    assert reserved_ips(conf, "c1", "eth0") == []
    assert [f for f in files(data_dir) if f not in ("lock", "last_reserved_ip.0", "last_reserved_ip.1")] == [
        "10.1.0.2", "fd00::10"]


def test_one_lock_is_held_across_every_range_set_of_an_add(data_dir, monkeypatch):
    # the reference locks per range set; a dual-stack ADD of ours takes the lock once
    locked_at_reserve = []
    reserve = store_module.DiskStore.reserve
    flock = fcntl.flock

    def reserve_and_probe(self, *args):
        fd = os.open(os.path.join(self.directory, "lock"), os.O_RDONLY)
        try:
            flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            locked_at_reserve.append(False)
        except BlockingIOError:
            locked_at_reserve.append(True)
        finally:
            os.close(fd)
        return reserve(self, *args)

    takes = []
    monkeypatch.setattr(store_module.DiskStore, "reserve", reserve_and_probe)
    monkeypatch.setattr(store_module.fcntl, "flock", lambda fd, op: (takes.append(op), flock(fd, op)))
    add_address(config(data_dir, **DUAL))
    assert locked_at_reserve == [True, True]
    assert takes == [fcntl.LOCK_EX]


def test_reserved_ips_reads_without_creating_anything(data_dir):
    conf = config(data_dir, **DUAL)
    assert reserved_ips(conf, "c1", "eth0") == []
    assert not os.path.exists(data_dir)
    invoke("ADD", conf, "c1")
    assert reserved_ips(conf, "c1", "eth0") == ["10.1.0.2", "fd00::10"]
    assert reserved_ips(conf, "c1", "eth1") == []


def test_reserved_ips_still_answers_when_the_index_cannot_be_written(data_dir, monkeypatch):
    conf = config(data_dir, **DUAL)
    invoke("ADD", conf, "c1")

    def unwritable(path):
        raise OSError(30, "Read-only file system")

    monkeypatch.setattr(store_module, "Index", unwritable)
    assert reserved_ips(conf, "c1", "eth0") == ["10.1.0.2", "fd00::10"]


@pytest.mark.parametrize("module", sorted(PLUGIN_MODULES.values()))
def test_no_plugin_imports_netaddr(module):
    # ~35 ms of every exec's start-up went to importing netaddr; the ipam code uses ipaddress.
    probe = f"import sys, {module}; print(sorted(m for m in sys.modules if m.split('.')[0] == 'netaddr'))"
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True,
                          cwd=os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(__file__)))))
    assert proc.stdout.strip() == "[]"
