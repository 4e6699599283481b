"""The worker's watch on its own code: what counts as a change, with and without inotify."""

import os

import pytest

from cni_rkt.worker import codewatch
from cni_rkt.worker.codewatch import CodeWatch


@pytest.fixture
def tree(tmp_path):
    """A package with a subpackage, inside an import root."""
    root = tmp_path / "root"
    (root / "pkg" / "sub" / "__pycache__").mkdir(parents=True)
    (root / "pkg" / "__init__.py").write_text("")
    (root / "pkg" / "sub" / "mod.py").write_text("x = 1\n")
    return root


@pytest.fixture(params=["inotify", "walk"])
def watch_of(request, monkeypatch):
    if request.param == "walk":
        monkeypatch.setattr(codewatch, "_libc", type("NoInotify", (), {"inotify_init1": staticmethod(lambda flags: -1)}))

    def watch(root):
        watch = CodeWatch(str(root / "pkg"), [str(root)])
        assert (watch.fileno() is None) == (request.param == "walk")
        request.addfinalizer(watch.close)
        return watch

    return watch


def test_editing_a_module_in_place_is_a_change(tree, watch_of):
    watch = watch_of(tree)
    assert not watch.changed()
    with open(tree / "pkg" / "sub" / "mod.py", "a") as f:  # same inode, as an editor that writes in place
        f.write("y = 2\n")
    assert watch.changed()
    assert watch.changed()  # it stays changed


@pytest.mark.parametrize("change", [
    lambda t: (t / "pkg" / "new.py").write_text(""),
    lambda t: (t / "pkg" / "sub" / "mod.py").unlink(),
    lambda t: os.replace(t / "pkg" / "sub" / "mod.py", t / "pkg" / "sub" / "renamed.py"),
    lambda t: (t / "pkg" / "newsub").mkdir() or (t / "pkg" / "newsub" / "x.py").write_text(""),
    lambda t: (t / "installed_beside.pth").write_text(""),
], ids=["new module", "removed module", "renamed module", "new subpackage", "new entry in an import root"])
def test_modules_added_removed_or_renamed_are_changes(tree, watch_of, change):
    watch = watch_of(tree)
    change(tree)
    assert watch.changed()


def test_bytecode_and_other_files_in_the_package_are_not_changes(tree):
    watch = CodeWatch(str(tree / "pkg"), [str(tree)])
    try:
        (tree / "pkg" / "sub" / "__pycache__" / "mod.cpython-311.pyc").write_bytes(b"\0")
        (tree / "pkg" / "__pycache__").mkdir()
        (tree / "pkg" / "notes.txt").write_text("")
        with open(tree / "pkg" / "notes.txt", "a") as f:
            f.write("more")
        assert not watch.changed()
    finally:
        watch.close()


@pytest.mark.parametrize("mask, name, in_root, expected", [
    (codewatch.IN_MODIFY, b"mod.py", False, True),
    (codewatch.IN_MODIFY, b"mod.pyc", False, False),
    (codewatch.IN_CREATE | codewatch.IN_ISDIR, b"__pycache__", False, False),
    (codewatch.IN_MODIFY, b"unrelated.txt", True, False),  # a root's mtime does not change
    (codewatch.IN_CREATE, b"unrelated.txt", True, True),  # it does
    (codewatch.IN_DELETE_SELF, b"", False, True),
    (codewatch.IN_Q_OVERFLOW, b"", False, True),  # events were lost: assume the worst
])
def test_which_inotify_events_are_code_changes(mask, name, in_root, expected):
    assert codewatch.is_code_change(mask, name, in_root) is expected


def test_a_change_inotify_cannot_see_is_found_by_the_periodic_walk(tree, monkeypatch):
    watch = CodeWatch(str(tree / "pkg"), [str(tree)])
    try:
        monkeypatch.setattr(watch, "_pending_change", lambda: False)  # as on a network filesystem
        (tree / "pkg" / "sub" / "mod.py").write_text("x = 22\n")
        watch.rewalk_if_due()  # not due yet: set-up just walked
        assert not watch.changed()
        watch.stamped_at -= codewatch.RESTAMP_SECONDS
        watch.rewalk_if_due()
        assert watch.changed()
    finally:
        watch.close()
