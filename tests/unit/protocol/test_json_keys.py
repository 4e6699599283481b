"""Keys matched as Go's encoding/json matches struct fields: exactly, else ignoring case."""

from cni_rkt.protocol.json_keys import Whole, respell_keys

SCHEMA = {"ipam": {"subnet": None, "rangeStart": None, "ranges": [[{"subnet": None}]]}}


def test_keys_are_respelled_at_every_depth_and_unknown_keys_kept():
    config = {"IPAM": {"SUBNET": "10.1.0.0/24", "rangestart": "10.1.0.9", "Ranges": [[{"Subnet": "10.2.0.0/24"}]],
                       "Other": 1}, "name": "n"}
    assert respell_keys(config, SCHEMA) == {
        "ipam": {"subnet": "10.1.0.0/24", "rangeStart": "10.1.0.9", "ranges": [[{"subnet": "10.2.0.0/24"}]],
                 "Other": 1},
        "name": "n",
    }


def test_a_later_spelling_of_the_same_field_wins():
    assert respell_keys({"ipam": {"subnet": "a", "Subnet": "b"}}, SCHEMA) == {"ipam": {"subnet": "b"}}
    assert respell_keys({"ipam": {"Subnet": "b", "subnet": "a"}}, SCHEMA) == {"ipam": {"subnet": "a"}}


def test_unicode_folding_counts_as_in_go_long_s_for_s():
    assert respell_keys({"ipam": {"\u017fubnet": "a"}}, SCHEMA) == {"ipam": {"subnet": "a"}}


def test_values_of_other_shapes_are_left_for_the_type_checks():
    assert respell_keys({"IPAM": "x"}, SCHEMA) == {"ipam": "x"}
    assert respell_keys({"ipam": {"ranges": {"Subnet": 1}}}, SCHEMA) == {"ipam": {"ranges": {"Subnet": 1}}}


def test_only_the_folds_go_makes_count_not_pythons_full_case_folding():
    # Go 1.19's decoder folds ASCII letters and ſ (s), K (Kelvin sign, k); Python's casefold
    # also takes ß for "ss" and ligatures such as ﬆ for "st", which Go leaves unknown.
    schema = {"rangeStart": None, "forceAddress": None, "mask": None}
    assert respell_keys({"mas\u212a": 1}, schema) == {"mask": 1}
    for key in ("range\ufb06art", "forceAddre\u00df", "FORCEADDRE\u1e9e"):
        assert respell_keys({key: 1}, schema) == {key: 1}


def test_a_later_spelling_of_an_object_field_is_decoded_into_the_earlier_one():
    # Go decodes a repeated struct field into the same struct: fields the later object
    # lacks keep the earlier values ("ipam": {...} then "IPAM": {"gateway"} keeps the subnet).
    config = {"ipam": {"subnet": "a", "rangeStart": "s", "ranges": [[{"subnet": "r"}]]},
              "IPAM": {"Subnet": "b", "ranges": [[{"subnet": "q"}]]}, "Other": {"x": 1}, "other": {"y": 2}}
    assert respell_keys(config, SCHEMA) == {
        "ipam": {"rangeStart": "s", "subnet": "b", "ranges": [[{"subnet": "q"}]]}, "Other": {"x": 1}, "other": {"y": 2}}
    assert respell_keys({"ipam": {"subnet": "a"}, "Ipam": "x"}, SCHEMA) == {"ipam": "x"}


def test_a_repeated_object_go_decodes_whole_replaces_the_earlier_one():
    schema = {"routes": [Whole.fromkeys(("dst", "gw"))]}
    config = {"routes": [{"dst": "a", "gw": "g"}], "Routes": [{"DST": "b"}]}
    assert respell_keys(config, schema) == {"routes": [{"dst": "b"}]}
