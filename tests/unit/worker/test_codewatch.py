"""The worker's watch on its own code: what counts as a change, with and without inotify."""

import json
import os
import subprocess
import sys

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
    (root / "python3.11").write_bytes(b"\x7fELF")  # stands for the interpreter's binary
    return root


@pytest.fixture(params=["inotify", "walk"])
def watch_of(request, monkeypatch):
    if request.param == "walk":
        monkeypatch.setattr(codewatch, "_libc", type("NoInotify", (), {"inotify_init1": staticmethod(lambda flags: -1)}))

    def watch(root):
        watch = CodeWatch(str(root / "pkg"), [str(root)], [str(root / "python3.11")])
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


@pytest.mark.parametrize("change", [
    lambda t: (t / "update").write_bytes(b"\x7fELF2") or os.replace(t / "update", t / "python3.11"),
    lambda t: open(t / "python3.11", "ab").write(b"\0"),
    lambda t: (t / "python3.11").unlink(),
], ids=["replaced, as a package upgrade does", "written in place", "removed"])
def test_a_change_to_the_interpreter_is_a_change(tree, watch_of, change):
    watch = watch_of(tree)
    change(tree)
    assert watch.changed()


def test_the_interpreter_is_its_binary_and_standard_library_not_the_import_roots(tmp_path):
    """As the worker runs it: -IS, the import roots put first on sys.path."""
    probe = (f"import sys; sys.path[:0] = [{str(tmp_path)!r}]; import json, os; "
             "from cni_rkt.worker.codewatch import interpreter_paths; "
             f"dirs, files = interpreter_paths([{str(tmp_path)!r}]); "
             "print(json.dumps([dirs, files, os.path.dirname(os.__file__), os.path.realpath(sys.executable)]))")
    env = {"PYTHONPATH": os.getcwd()}
    done = subprocess.run([sys.executable, "-S", "-c", probe], capture_output=True, text=True, env=env, check=True)
    dirs, files, stdlib, binary = json.loads(done.stdout)
    assert stdlib in dirs and str(tmp_path) not in dirs
    assert files[0] == binary


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


@pytest.mark.parametrize("mask", [codewatch.IN_ATTRIB, codewatch.IN_MODIFY, codewatch.IN_DELETE_SELF])
def test_any_event_on_a_watched_file_is_a_change(mask):
    assert codewatch.is_code_change(mask, b"", in_root=False, is_file=True)


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
