"""`validate DIR` warns (CNI304) exactly where `cni-rkt exec`'s libcni lookup stops: at a
file libcni cannot parse or load, before the network that is asked for."""

from __future__ import annotations

import pytest

from validate_cases import conf, conflist, run

from cni_rkt.errors import CNIError
from cni_rkt.runtime.netconf import load_network

LATER = conf(name="later")
FIRST_FILES = {
    "bad JSON": ("10-a.conf", "{"),
    "not an object": ("10-a.conf", "[]"),
    "conflist without plugins": ("10-a.conflist", conflist(plugins=[])),
    "plugin without type": ("10-a.conflist", conflist({"bridge": "cni0"})),
    "conf without type": ("10-a.conf", conf(type=None)),
    "disableCheck not a bool": ("10-a.conflist", conflist({"type": "bridge"}, disableCheck="yes")),
    "cniVersion not a string": ("10-a.conflist", conflist({"type": "bridge"}, cniVersion=1.0)),
    "list name not a string": ("10-a.conflist", conflist({"type": "bridge"}, name=7)),
}
LOADABLE_FIRST_FILES = {
    "another network": ("10-a.conf", conf(name="other")),
    "a name only the run refuses": ("10-a.conf", conf(name="bad name/x")),  # libcni checks it at ADD
}


def lookup_stops(tmp_path) -> bool:
    try:
        load_network(str(tmp_path / "d"), "later")
    except CNIError:
        return True
    return False


@pytest.mark.parametrize("case", [*FIRST_FILES, *LOADABLE_FIRST_FILES])
def test_cni304_marks_the_file_where_exec_s_lookup_stops(tmp_path, case):
    name, text = FIRST_FILES.get(case) or LOADABLE_FIRST_FILES[case]
    findings = run(tmp_path, {f"d/{name}": text, "d/20-later.conf": LATER}, args=["d"])
    flagged = [f for f in findings if f.rule == "CNI304"]
    assert lookup_stops(tmp_path) == (case in FIRST_FILES)
    assert [f.path.rsplit("/", 1)[-1] for f in flagged] == ([name] if case in FIRST_FILES else [])


def test_cni304_says_why_libcni_refuses_the_file(tmp_path):
    findings = run(tmp_path, {"d/10-a.conflist": conflist({"bridge": "cni0"}), "d/20-later.conf": LATER},
                   args=["d"])
    [finding] = [f for f in findings if f.rule == "CNI304"]
    assert "cannot load (a plugin config has no type)" in finding.message


@pytest.mark.parametrize("later_files, expected", [
    ({}, "no network in it can be found"),
    ({"d/20-later.conf": LATER}, "no network in it or in the 1 file read after it (20-later.conf) can be found"),
    ({f"d/{n}-x.conf": conf(name=f"n{n}") for n in range(20, 25)},
     "no network in it or in the 5 files read after it (20-x.conf, 21-x.conf, 22-x.conf and 2 more) can be found"),
])
def test_cni304_names_the_files_whose_networks_the_stop_hides(tmp_path, later_files, expected):
    findings = run(tmp_path, {"d/10-a.conf": "{", **later_files}, args=["d"])
    [finding] = [f for f in findings if f.rule == "CNI304"]
    assert finding.message.endswith(expected)
