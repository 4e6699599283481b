import pytest

from cni_rkt.errors import CNIError
from cni_rkt.protocol.args import parse_cni_args

KEYS = frozenset({"IP", "MAC"})


def test_known_keys_are_returned():
    assert parse_cni_args("IP=10.0.0.5;MAC=aa:bb:cc:dd:ee:ff", KEYS) == {"IP": "10.0.0.5", "MAC": "aa:bb:cc:dd:ee:ff"}


def test_empty_is_nothing():
    assert parse_cni_args("", KEYS) == {}


def test_unknown_key_is_an_error_naming_it():
    with pytest.raises(CNIError) as info:
        parse_cni_args("K8S_POD_NAME=x;IP=10.0.0.5", KEYS)
    assert info.value.code == 4
    assert info.value.msg == 'ARGS: unknown args ["K8S_POD_NAME=x"]'


@pytest.mark.parametrize("flag", ["1", "true", "True", "TRUE", "tRuE"])
def test_ignore_unknown_tolerates_kubelet_keys(flag):
    raw = f"IgnoreUnknown={flag};K8S_POD_NAMESPACE=default;K8S_POD_NAME=web;IP=10.0.0.9"
    assert parse_cni_args(raw, KEYS) == {"IP": "10.0.0.9"}


def test_ignore_unknown_false_still_rejects():
    with pytest.raises(CNIError):
        parse_cni_args("IgnoreUnknown=0;FOO=1", KEYS)


@pytest.mark.parametrize("flag", ["t", "yes", "BAD"])
def test_ignore_unknown_refuses_what_go_refuses_naming_the_lowercased_value(flag):
    with pytest.raises(CNIError) as info:
        parse_cni_args(f"IgnoreUnknown={flag};FOO=1", KEYS)
    assert info.value.msg == (
        f'ARGS: error parsing value of pair "IgnoreUnknown={flag}": boolean unmarshal error: invalid input {flag.lower()}'
    )


def test_keys_are_case_sensitive_like_go_field_names():
    with pytest.raises(CNIError):
        parse_cni_args("ip=10.0.0.5", KEYS)


@pytest.mark.parametrize("raw", ["IP", "IP=1=2", "IP=10.0.0.1;", "IgnoreUnknown=yes"])
def test_malformed_pairs(raw):
    with pytest.raises(CNIError) as info:
        parse_cni_args(raw, KEYS)
    assert info.value.code == 4 and "ARGS:" in info.value.msg


@pytest.mark.parametrize("raw,msg", [
    ('FOO="q"', r'ARGS: unknown args ["FOO=\"q\""]'),
    ("A=1\t2", r'ARGS: unknown args ["A=1\t2"]'),
    ('A=b=c"', r'ARGS: invalid pair "A=b=c\""'),
    ('IgnoreUnknown=y"', r'ARGS: error parsing value of pair "IgnoreUnknown=y\"": boolean unmarshal error: invalid input y"'),
])
def test_pairs_in_messages_are_quoted_as_go_quotes_them(raw, msg):
    # LoadArgs quotes with %q: a quote or a tab inside a pair is escaped, so the message stays one string.
    with pytest.raises(CNIError) as info:
        parse_cni_args(raw, KEYS)
    assert info.value.msg == msg
