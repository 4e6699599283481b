"""`cni-rkt ipam list|reclaim` on a temp data dir filled by our host-local (in-process) and by
files as the Go plugin and its pre-2018 versions write them."""

import json
import os
import shutil

import pytest

from cni_rkt.cli.main import main
from cni_rkt.protocol.runner import run

NETWORK = "net1"


def call_host_local(command, data_dir, cid="", ifname="eth0", **extra):
    config = {"cniVersion": "1.1.0", "name": NETWORK, "type": "host-local",
              "ipam": {"type": "host-local", "subnet": "10.5.0.0/24", "dataDir": data_dir}, **extra}
    env = {"CNI_COMMAND": command, "CNI_CONTAINERID": cid, "CNI_NETNS": "/var/run/netns/x",
           "CNI_IFNAME": ifname, "CNI_PATH": "/opt/cni/bin"}
    return run("host-local", env, json.dumps(config).encode())


def host_local(command, data_dir, cid="", ifname="eth0", **extra):
    out, code = call_host_local(command, data_dir, cid, ifname, **extra)
    assert code == 0, out
    return out


def go_file(data_dir, address, content):
    """An address file written behind our store's back, as the Go plugin (or an old one) would."""
    with open(os.path.join(data_dir, NETWORK, address), "w") as f:
        f.write(content)


def address_files(data_dir):
    return sorted((n for n in os.listdir(os.path.join(data_dir, NETWORK)) if n[0].isdigit()),
                  key=lambda n: tuple(int(p) for p in n.split(".")))


@pytest.fixture
def populated(tmp_path):
    """c1/eth0 .2, c1/eth1 .3, c2/eth0 .4 by our plugin; Go's c3/eth0 .9; legacy c1 .10 and old .11."""
    data_dir = str(tmp_path / "data")
    for cid, ifname in (("c1", "eth0"), ("c1", "eth1"), ("c2", "eth0")):
        host_local("ADD", data_dir, cid, ifname)
    go_file(data_dir, "10.5.0.9", "c3\r\neth0")
    go_file(data_dir, "10.5.0.10", "c1")
    go_file(data_dir, "10.5.0.11", "old\n")
    return data_dir


def ipam(capsys, *args):
    code = main(["ipam", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_list_shows_every_reservation_in_address_order_with_legacy_flagged(populated, capsys):
    code, out, _ = ipam(capsys, "list", "--data-dir", populated)
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == "network net1: 6 reservations"
    rows = [line.split() for line in lines[2:]]
    assert [r[:3] for r in rows] == [["10.5.0.2", "c1", "eth0"], ["10.5.0.3", "c1", "eth1"], ["10.5.0.4", "c2", "eth0"],
                                     ["10.5.0.9", "c3", "eth0"], ["10.5.0.10", "c1", "-"], ["10.5.0.11", "old", "-"]]
    assert [("legacy" in line) for line in lines[2:]] == [False] * 4 + [True] * 2


def test_list_json_and_one_network(populated, capsys):
    os.makedirs(os.path.join(populated, "other"))
    code, out, _ = ipam(capsys, "list", "--data-dir", populated, "--json", NETWORK)
    report = json.loads(out)
    assert code == 0 and [n["name"] for n in report["networks"]] == [NETWORK]
    legacy = report["networks"][0]["reservations"][-1]
    assert {k: legacy[k] for k in ("address", "containerID", "ifname", "legacy")} == {
        "address": "10.5.0.11", "containerID": "old", "ifname": None, "legacy": True}
    assert legacy["modified"].endswith("Z")


def test_list_never_writes(tmp_path, capsys):
    """A data dir only the Go plugin wrote: no lock, no index, nothing created."""
    data_dir = tmp_path / "data"
    (data_dir / NETWORK).mkdir(parents=True)
    go_file(str(data_dir), "10.5.0.9", "c3\r\neth0")
    before = sorted(os.walk(data_dir))
    assert ipam(capsys, "list", "--data-dir", str(data_dir))[0] == 0
    assert sorted(os.walk(data_dir)) == before


def test_reclaim_valid_releases_what_host_local_gc_releases(populated, capsys, tmp_path):
    twin = str(tmp_path / "twin")
    shutil.copytree(populated, twin)
    code, out, _ = ipam(capsys, "reclaim", NETWORK, "--data-dir", populated, "--valid", "c1:eth0", "--valid", "c3")
    assert code == 0
    assert out.splitlines()[-1] == "net1: released 3 reservations"
    host_local("GC", twin, **{"cni.dev/valid-attachments": [{"containerID": "c1", "ifname": "eth0"},
                                                             {"containerID": "c3", "ifname": "eth0"}]})
    assert address_files(populated) == address_files(twin) == ["10.5.0.2", "10.5.0.9", "10.5.0.10"]


def test_reclaim_container_and_ifname_releases_what_host_local_del_releases(populated, capsys, tmp_path):
    twin = str(tmp_path / "twin")
    shutil.copytree(populated, twin)
    assert ipam(capsys, "reclaim", NETWORK, "--data-dir", populated, "--container", "c1", "--ifname", "eth1")[0] == 0
    host_local("DEL", twin, "c1", "eth1")
    assert address_files(populated) == address_files(twin)
    assert "10.5.0.3" not in address_files(populated)


def test_reclaim_takes_container_id_as_exec_spells_it(populated, capsys):
    """`cni-rkt exec --container-id CID` and `ipam reclaim --container CID` name the same thing."""
    code, out, _ = ipam(capsys, "reclaim", NETWORK, "--data-dir", populated, "--container-id", "c1", "--ifname",
                        "eth1", "--dry-run")
    assert code == 0 and out.splitlines()[0] == "would release 10.5.0.3 (container c1, eth1)"


def test_reclaim_container_without_ifname_releases_all_its_files_and_the_store_agrees(populated, capsys):
    code, out, _ = ipam(capsys, "reclaim", NETWORK, "--data-dir", populated, "--container", "c1", "--json")
    assert code == 0
    assert [r["address"] for r in json.loads(out)["released"]] == ["10.5.0.2", "10.5.0.3", "10.5.0.10"]
    assert address_files(populated) == ["10.5.0.4", "10.5.0.9", "10.5.0.11"]
    # host-local itself (through its index) no longer finds c1's address.
    out, code = call_host_local("CHECK", populated, "c1", "eth0")
    assert code == 1 and "Failed to find address" in json.loads(out)["msg"]


def test_dry_run_prints_and_changes_nothing(populated, capsys):
    before = sorted(os.walk(populated))
    code, out, _ = ipam(capsys, "reclaim", NETWORK, "--data-dir", populated, "--valid", "c2", "--dry-run")
    assert code == 0
    assert "would release 10.5.0.10 (container c1, legacy file without ifname)" in out
    assert out.splitlines()[-1] == "net1: would release 5 reservations"
    assert sorted(os.walk(populated)) == before


@pytest.mark.parametrize("network", ["../outside", ".cni-rkt-index", "missing"])
def test_reclaim_refuses_anything_outside_an_existing_network_dir(tmp_path, capsys, network):
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "10.5.0.2").write_text("c1\r\neth0")
    code, _, err = ipam(capsys, "reclaim", network, "--data-dir", str(data_dir), "--container", "c1")
    assert code == 1 and err.startswith("cni-rkt ipam: ")
    assert os.listdir(data_dir) == [] and os.listdir(tmp_path / "outside") == ["10.5.0.2"]


def test_reclaim_refuses_a_network_dir_that_is_a_symlink_out(tmp_path, capsys):
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "10.5.0.2").write_text("c1\r\neth0")
    os.symlink(tmp_path / "outside", data_dir / NETWORK)
    code, _, err = ipam(capsys, "reclaim", NETWORK, "--data-dir", str(data_dir), "--container", "c1")
    assert code == 1 and "resolves outside" in err
    assert os.listdir(tmp_path / "outside") == ["10.5.0.2"]


@pytest.mark.parametrize("args, message", [
    (["--valid", "c1", "--ifname", "eth0"], "--ifname goes with --container"),
    (["--valid", "c1:"], "--valid: 'c1:' names no interface (give CID or CID:IFNAME)"),
    (["--valid", ":eth0"], "--valid: ':eth0' names no container id"),  # as `exec gc` says it
])
def test_bad_reclaim_arguments_exit_2(populated, capsys, args, message):
    code, _, err = ipam(capsys, "reclaim", NETWORK, "--data-dir", populated, *args)
    assert code == 2 and message in err


@pytest.mark.parametrize("args, message", [
    (["--container", "c1", "--ifname", ""], "--ifname: an empty interface name"),
    (["--container", "", "--ifname", "eth0"], "--container: an empty container id"),
    (["--valid", "c1", "--ifname", ""], "--ifname goes with --container"),
])
def test_an_empty_container_or_ifname_is_refused_not_widened(populated, capsys, args, message):
    """`--ifname "$IF"` with IF unset must not release every interface's reservations."""
    before = address_files(populated)
    code, _, err = ipam(capsys, "reclaim", NETWORK, "--data-dir", populated, *args)
    assert code == 2 and message in err
    assert address_files(populated) == before


def test_reclaim_needs_valid_or_container(populated, capsys):
    with pytest.raises(SystemExit) as info:
        main(["ipam", "reclaim", NETWORK, "--data-dir", populated])
    assert info.value.code == 2


def test_list_skips_a_network_dir_that_leads_out_of_the_data_dir(populated, capsys, tmp_path):
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "10.9.9.9").write_text("x\r\neth0")
    os.symlink(tmp_path / "outside", os.path.join(populated, "escape"))
    code, out, err = ipam(capsys, "list", "--data-dir", populated, "--json")
    assert code == 0 and [n["name"] for n in json.loads(out)["networks"]] == [NETWORK]
    assert "skipping escape" in err and "resolves outside" in err


def test_list_and_dry_run_skip_what_is_no_address_file_as_reclaim_does(populated, capsys):
    """A directory or a FIFO named like an address is no reservation to the store: list and
    --dry-run neither fail on it nor wait for a FIFO's writer, and agree with a real reclaim."""
    network_dir = os.path.join(populated, NETWORK)
    os.mkdir(os.path.join(network_dir, "10.5.0.20"))
    fifo = os.path.join(network_dir, "10.5.0.21")
    os.mkfifo(fifo)
    writer = os.open(fifo, os.O_RDWR | os.O_NONBLOCK)  # a pending write: an old reader would list it
    try:
        os.write(writer, b"c9\r\neth0")
        code, out, err = ipam(capsys, "list", "--data-dir", populated, "--json")
        assert (code, err) == (0, "")
        listed = [r["address"] for r in json.loads(out)["networks"][0]["reservations"]]
        assert listed == ["10.5.0.2", "10.5.0.3", "10.5.0.4", "10.5.0.9", "10.5.0.10", "10.5.0.11"]
        code, dry, _ = ipam(capsys, "reclaim", NETWORK, "--data-dir", populated, "--valid", "c1", "--dry-run", "--json")
        code_done, done, _ = ipam(capsys, "reclaim", NETWORK, "--data-dir", populated, "--valid", "c1", "--json")
        assert code == code_done == 0
        assert json.loads(dry)["released"] == json.loads(done)["released"]
        assert [r["address"] for r in json.loads(done)["released"]] == ["10.5.0.4", "10.5.0.9", "10.5.0.11"]
    finally:
        os.close(writer)


@pytest.fixture
def unreadable_file(populated, monkeypatch):
    """10.5.0.3 cannot be opened, as the store's 0600 files for a user who is not root."""
    denied = os.path.join(populated, NETWORK, "10.5.0.3")
    real_open = os.open

    def open_denied(path, *args, **kwargs):
        if path == denied:
            raise PermissionError(13, "Permission denied", path)
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(os, "open", open_denied)
    return denied


@pytest.mark.parametrize("args", [["list"], ["list", NETWORK], ["list", "--json"],
                                  ["reclaim", NETWORK, "--valid", "c1", "--dry-run"]])
def test_an_unreadable_address_file_fails_instead_of_being_left_out(populated, unreadable_file, capsys, args):
    code, out, err = ipam(capsys, *args, "--data-dir", populated)
    assert code == 1 and out == ""
    assert err == f"cni-rkt ipam: cannot read {unreadable_file}: Permission denied\n"


def test_a_file_of_bytes_that_are_not_utf8_breaks_neither_host_local_nor_list_nor_reclaim(populated, capsys):
    """Garbage in one file (a crash, a bad disk) neither blocks reclaiming it nor host-local."""
    with open(os.path.join(populated, NETWORK, "10.5.0.12"), "wb") as f:
        f.write(b"c\xff\xfe4\r\neth0")
    assert json.loads(host_local("ADD", populated, "c5"))["ips"][0]["address"] == "10.5.0.5/24"
    code, out, _ = ipam(capsys, "list", "--data-dir", populated)
    assert code == 0
    out.encode("utf-8")  # no lone surrogates: a terminal or pipe with strict UTF-8 takes it
    code, out, _ = ipam(capsys, "list", "--data-dir", populated, "--json")
    assert json.loads(out)["networks"][0]["reservations"][-1]["containerID"] == "c\ufffd\ufffd4"
    code, out, err = ipam(capsys, "reclaim", NETWORK, "--data-dir", populated,
                          "--valid", "c1", "--valid", "c2", "--valid", "c3", "--valid", "c5")
    assert (code, err) == (0, "")
    assert out.splitlines() == ["released 10.5.0.11 (container old, legacy file without ifname)",
                                "released 10.5.0.12 (container c\ufffd\ufffd4, eth0)",
                                "net1: released 2 reservations"]
    assert "10.5.0.12" not in address_files(populated)


def test_a_data_dir_that_is_not_utf8_is_shown_escaped(capsys):
    """As `worker status` shows its socket dir: a UTF-8 locale's stdout refuses the raw bytes."""
    assert main(["ipam", "list", "--data-dir", "/nonexistent/\udcff"]) == 0
    assert capsys.readouterr().out == "no networks in /nonexistent/\\xff\n"


def test_a_file_time_out_of_datetimes_range_is_listed_not_taken_for_a_bad_argument(populated, capsys, monkeypatch):
    """A tmpfs keeps any mtime (touch -d, a clock gone wrong): the reservation is still listed, time unknown."""
    from cni_rkt.ipam import inventory

    real = inventory.read_address_file
    monkeypatch.setattr(inventory, "read_address_file", lambda path: (real(path)[0], 2.0 ** 48))
    code, out, err = ipam(capsys, "list", "--data-dir", populated, NETWORK)
    assert (code, err) == (0, "")
    assert out.splitlines()[2].split() == ["10.5.0.2", "c1", "eth0", "-"]
    code, out, _ = ipam(capsys, "list", "--data-dir", populated, NETWORK, "--json")
    assert code == 0 and json.loads(out)["networks"][0]["reservations"][0]["modified"] is None


def test_control_characters_in_a_file_cannot_forge_lines_or_escapes_in_the_text_output(populated, capsys):
    """A file's container id and ifname are shown escaped in list and reclaim's text (the JSON keeps them)."""
    go_file(populated, "10.5.0.12", "evil\n10.5.0.99  c9  eth0\x1b[2J\r\neth\t0")
    code, out, _ = ipam(capsys, "list", "--data-dir", populated, NETWORK)
    assert code == 0
    assert "\x1b" not in out and "\t" not in out
    [row] = [line for line in out.splitlines() if "10.5.0.12" in line]
    assert "evil\\n10.5.0.99  c9  eth0\\x1b[2J" in row and "eth\\t0" in row
    assert not any(line.lstrip().startswith("10.5.0.99") for line in out.splitlines())
    code, out, _ = ipam(capsys, "list", "--data-dir", populated, "--json")
    assert json.loads(out)["networks"][0]["reservations"][-1]["containerID"] == "evil\n10.5.0.99  c9  eth0\x1b[2J"
    code, out, _ = ipam(capsys, "reclaim", NETWORK, "--data-dir", populated, "--dry-run",
                        "--container", "evil\n10.5.0.99  c9  eth0\x1b[2J")
    assert out.splitlines()[0] == "would release 10.5.0.12 (container evil\\n10.5.0.99  c9  eth0\\x1b[2J, eth\\t0)"
