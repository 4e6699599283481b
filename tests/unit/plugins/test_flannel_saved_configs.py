"""The saved delegate configs under flannel's dataDir: names, the reference's form, safety."""

import os
import stat

import pytest

from cni_rkt.errors import CNIError
from cni_rkt.flannel.saved_configs import SavedConfigs

CID = "3f1c2b5e-8a6d-4c1e-9b7a-2d4e6f8a0b1c"  # rkt's container ids are pod UUIDs


@pytest.fixture
def store(tmp_path):
    return SavedConfigs(str(tmp_path / "flannel"))


def names(store):
    return sorted(os.listdir(store.data_dir))


def test_save_writes_ours_per_attachment_and_the_references_file(store):
    store.save(CID, "eth0", b'{"a":1}')
    assert names(store) == [CID, f"{CID}@eth0"]
    with open(os.path.join(store.data_dir, CID), "rb") as f:
        assert f.read() == b'{"a":1}'  # the reference's DEL finds it after a switch back


def test_two_attachments_of_one_container_do_not_clobber(store):
    store.save(CID, "eth0", b"A")
    store.save(CID, "eth1", b"B")
    assert store.load(CID, "eth0").data == b"A"
    assert store.load(CID, "eth1").data == b"B"
    assert names(store) == [CID, f"{CID}@eth0", f"{CID}@eth1"]


def test_modes_are_private(store):
    store.save(CID, "eth0", b"x")
    assert stat.S_IMODE(os.stat(store.data_dir).st_mode) == 0o700
    for name in names(store):
        assert stat.S_IMODE(os.stat(os.path.join(store.data_dir, name)).st_mode) == 0o600


def test_save_replaces_atomically_and_leaves_no_temp_file(store):
    store.save(CID, "eth0", b"old")
    store.save(CID, "eth0", b"new")
    assert store.load(CID, "eth0").data == b"new"
    assert not [n for n in names(store) if n.startswith(".")]


def test_load_reads_the_references_container_id_file(store):
    os.makedirs(store.data_dir)
    with open(os.path.join(store.data_dir, CID), "wb") as f:
        f.write(b'{"type":"bridge"}')
    saved = store.load(CID, "eth0")
    assert (saved.data, saved.ifname, saved.path) == (b'{"type":"bridge"}', None, os.path.join(store.data_dir, CID))


def test_load_missing_is_none(store):
    assert store.load(CID, "eth0") is None


def test_remove_keeps_the_references_file_while_it_belongs_to_another_attachment(store):
    store.save(CID, "eth0", b"A")  # the reference's file now holds A
    store.save(CID, "eth1", b"B")
    store.remove(store.load(CID, "eth1"))
    assert names(store) == [CID, f"{CID}@eth0"]
    store.remove(store.load(CID, "eth0"))
    assert names(store) == []


def test_remove_tolerates_absence(store):
    store.save(CID, "eth0", b"A")
    saved = store.load(CID, "eth0")
    store.remove(saved)
    store.remove(saved)
    assert names(store) == []


def test_all_lists_both_forms_and_skips_temp_files_and_strangers(store):
    store.save(CID, "eth0", b"A")
    for stranger in (".x.tmp", "-bad"):
        with open(os.path.join(store.data_dir, stranger), "w") as f:
            f.write("?")
    os.mkdir(os.path.join(store.data_dir, "subdir"))
    listed = [(s.container_id, s.ifname) for s in store.all()]
    assert listed == [(CID, None), (CID, "eth0")]


def test_all_of_a_missing_directory_is_empty(store):
    assert list(store.all()) == []


@pytest.mark.parametrize(
    "container_id, ifname",
    [("../etc", "eth0"), ("a/b", "eth0"), ("", "eth0"), (".hidden", "eth0"),
     (CID, "../../x"), (CID, "a/b"), (CID, ".."), (CID, "."), (CID, ""), (CID, "a b")],
)
def test_names_cannot_escape_data_dir(store, container_id, ifname):
    with pytest.raises(CNIError) as info:
        store.path_for(container_id, ifname)
    assert info.value.code == 4
    assert not os.path.exists(store.data_dir)


def test_unwritable_data_dir_is_an_io_error_naming_the_path(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(CNIError) as info:
        SavedConfigs(str(blocker / "flannel")).save(CID, "eth0", b"x")
    assert info.value.code == 5 and str(blocker) in info.value.msg


def test_a_save_that_fails_half_way_leaves_no_file(store, monkeypatch):
    write = SavedConfigs._write_atomically
    calls = []

    def second_write_fails(self, path, data):
        calls.append(path)
        if len(calls) == 2:
            raise OSError(28, "No space left on device")
        write(self, path, data)

    monkeypatch.setattr(SavedConfigs, "_write_atomically", second_write_fails)
    with pytest.raises(CNIError) as info:
        store.save(CID, "eth0", b"x")
    assert info.value.code == 5 and len(calls) == 2
    assert names(store) == []


def test_the_container_id_file_is_ours_for_another_interface_while_we_hold_files(store):
    store.save(CID, "eth1", b"B")  # also writes the container-id file
    assert store.load(CID, "eth0") is None
