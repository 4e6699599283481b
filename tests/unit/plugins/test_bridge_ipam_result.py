"""bridge_result.parse_ipam_answer and check_ipam_routes: an unusable IPAM answer is a
decoding failure (6) naming what is wrong, never an unexpected exception."""

import pytest

from cni_rkt.errors import CNIError, ErrorCode
from cni_rkt.plugins.bridge_result import check_ipam_routes, parse_ipam_answer
from cni_rkt.protocol.result import IPConfig, Result, Route, parse_result


def test_usable_routes_pass():
    check_ipam_routes(Result(ips=(IPConfig("10.22.0.2/16"),),
                             routes=(Route("0.0.0.0/0"), Route("::/0", "fd00::1"), Route("10.0.0.0/8"))), "host-local")


@pytest.mark.parametrize(
    "route, named",
    [
        (Route("default"), "route dst: 'default'"),
        (Route("0.0.0.0/0", "gw"), "route gw: 'gw'"),
        (Route("10.1.2.3/8"), "route dst: '10.1.2.3/8'"),  # host bits set: the kernel refuses it
    ],
)
def test_an_unusable_route_is_named(route, named):
    with pytest.raises(CNIError) as caught:
        check_ipam_routes(Result(ips=(IPConfig("10.22.0.2/16"),), routes=(route,)), "fake-ipam")
    assert caught.value.code == ErrorCode.DECODING_FAILURE
    assert f"fake-ipam returned an invalid {named}" in caught.value.msg


@pytest.mark.parametrize(
    "obj",
    [
        {"cniVersion": "1.0.0", "ips": "not-a-list"},
        {"cniVersion": "1.0.0", "ips": [{"gateway": "10.22.0.1"}]},
        {"cniVersion": "1.0.0", "interfaces": [7]},
        {"cniVersion": "0.2.0", "ip4": {"gateway": "10.22.0.1"}},
        {"cniVersion": "1.0.0", "dns": "x"},
    ],
)
def test_a_result_of_the_wrong_shape_is_a_decoding_failure(obj):
    with pytest.raises(CNIError) as caught:
        parse_result(obj, "1.0.0")
    assert caught.value.code == ErrorCode.DECODING_FAILURE


def test_parse_ipam_answer_reads_a_usable_answer():
    answer = b'{"cniVersion": "1.0.0", "ips": [{"address": "10.22.0.2/16", "gateway": "10.22.0.1"}]}'
    assert parse_ipam_answer(answer, "host-local", "1.0.0").ips == (IPConfig("10.22.0.2/16", "10.22.0.1"),)


@pytest.mark.parametrize(
    "answer, code, text",
    [
        (b"garbage", ErrorCode.DECODING_FAILURE, "fake-ipam printed a result that is not JSON"),
        (b'{"cniVersion": "1.0.0", "ips": "x"}', ErrorCode.DECODING_FAILURE, "failed to parse result"),
        (b'{"cniVersion": "1.0.0", "ips": []}', ErrorCode.INTERNAL, "IPAM plugin returned missing IP config"),
        (b'{"cniVersion": "1.0.0", "ips": [{"address": "x"}]}', ErrorCode.DECODING_FAILURE, "failed to parse result"),
        (b'{"cniVersion": "1.0.0", "ips": [{"address": "10.0.0.2/8"}], "routes": [{"dst": "x"}]}',
         ErrorCode.DECODING_FAILURE, "fake-ipam returned an invalid route dst: 'x'"),
    ],
)
def test_parse_ipam_answer_refuses_an_unusable_one(answer, code, text):
    with pytest.raises(CNIError) as caught:
        parse_ipam_answer(answer, "fake-ipam", "1.0.0")
    assert caught.value.code == code and text in caught.value.msg
