"""GC's list of live attachments: one reader, strict, because GC deletes what is not listed."""

import pytest

from cni_rkt.errors import CNIError
from cni_rkt.protocol.attachments import valid_attachments


@pytest.mark.parametrize("key", ["cni.dev/valid-attachments", "cni.dev/attachments"])
def test_pairs_from_either_key(key):
    config = {key: [{"containerID": "c1", "ifname": "eth0"}, {"containerID": "c2"}]}
    assert valid_attachments(config) == {("c1", "eth0"), ("c2", "")}


def test_the_current_key_wins_over_the_older_one():
    config = {"cni.dev/valid-attachments": [], "cni.dev/attachments": [{"containerID": "c1", "ifname": "eth0"}]}
    assert valid_attachments(config) == set()


@pytest.mark.parametrize("config", [{}, {"cni.dev/valid-attachments": None}, {"cni.dev/valid-attachments": "c1"}])
def test_a_missing_list_is_a_config_error_not_an_empty_set(config):
    with pytest.raises(CNIError) as info:
        valid_attachments(config)
    assert info.value.code == 7 and "cni.dev/valid-attachments" in info.value.msg


@pytest.mark.parametrize("entry", ["c1", {"containerID": 7}, {"containerID": "c1", "ifname": ["eth0"]}])
def test_a_malformed_entry_is_a_config_error(entry):
    with pytest.raises(CNIError) as info:
        valid_attachments({"cni.dev/valid-attachments": [entry]})
    assert info.value.code == 7 and info.value.details == "cni.dev/valid-attachments"


@pytest.mark.parametrize("config, msg", [
    ({}, "GC needs 'cni.dev/valid-attachments': a list of {containerID, ifname} objects, got null"),
    ({"cni.dev/attachments": {"a": 1}}, 'GC needs \'cni.dev/attachments\': a list of {containerID, ifname} objects, got {"a": 1}'),
    ({"cni.dev/valid-attachments": [{"containerID": "c1", "ifname": None}]},
     'cni.dev/valid-attachments: invalid attachment {"containerID": "c1", "ifname": null}: needs a string containerID and ifname'),
])
def test_refusals_quote_the_value_in_json(config, msg):
    with pytest.raises(CNIError) as info:
        valid_attachments(config)
    assert info.value.msg == msg
