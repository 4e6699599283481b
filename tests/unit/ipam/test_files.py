"""The Go plugin's file format: contents and names."""

from cni_rkt.ipam.files import address_of_name, file_content, parse_content


def test_parse_content_trims_and_reads_legacy_files():
    assert parse_content(b"abc\r\neth0") == ("abc", "eth0")
    assert parse_content(b"abc\r\neth0\n") == ("abc", "eth0")
    assert parse_content(b"abc") == ("abc", None)
    assert parse_content(b"  abc \n") == ("abc", None)


def test_content_is_the_reference_bytes():
    assert file_content("abc", "eth0") == b"abc\r\neth0"


def test_only_address_names_are_reservations():
    assert address_of_name("10.1.0.5") == (4, 0x0A010005)
    assert address_of_name("fd00::5") == (6, (0xFD00 << 112) | 5)
    for other in ("lock", "last_reserved_ip.0", ".cni-rkt-tmp-10.1.0.5.12", "010.1.0.5", "10.1.0.5 "):
        assert address_of_name(other) is None
