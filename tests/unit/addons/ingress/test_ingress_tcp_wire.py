"""The TCP entry point's readers of first bytes: the TLS ClientHello (server name, ALPN) and PROXY protocol
headers v1/v2, against what real TLS stacks and the PROXY protocol specification produce."""

from __future__ import annotations

import ssl

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pyk3s.addons.ingress.proxy.clienthello import (
    NEED_MORE,
    POSTGRES_SSL_REQUEST,
    ClientHello,
    NotTLS,
    postgres_starttls,
    read_client_hello,
)
from pyk3s.addons.ingress.proxy.proxyprotocol import NEED_MORE as PP_MORE
from pyk3s.addons.ingress.proxy.proxyprotocol import (
    NO_HEADER,
    ProxyHeader,
    build_header,
    read_header,
)


def openssl_hello(server_name: str | None, alpn: list[str] | None = None) -> bytes:
    """The ClientHello Python's OpenSSL sends (memory BIOs, no socket)."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    if alpn:
        ctx.set_alpn_protocols(alpn)
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(incoming, outgoing, server_hostname=server_name)
    with pytest.raises(ssl.SSLWantReadError):
        obj.do_handshake()
    return outgoing.read()


@pytest.mark.parametrize(("name", "alpn"), [("db.example.com", None), ("a.b.example.org", ["h2", "http/1.1"]),
                                            (None, ["mqtt"]), ("xn--9t9h.com", ["acme-tls/1"])])
def test_client_hello_from_openssl(name: str | None, alpn: list[str] | None) -> None:
    data = openssl_hello(name, alpn)
    hello = read_client_hello(data + b"extra")
    assert isinstance(hello, ClientHello)
    assert hello.server_name == (name or "") and hello.alpn == tuple(alpn or ())
    assert hello.size == len(data)


def test_client_hello_in_pieces() -> None:
    data = openssl_hello("pieces.example.com", ["h2"])
    for cut in (1, 4, 5, 40, len(data) - 1):
        assert read_client_hello(data[:cut]) is NEED_MORE


def test_client_hello_split_over_two_records() -> None:
    data = openssl_hello("split.example.com", ["h2"])
    body = data[5:]
    half = len(body) // 2
    two = (b"\x16\x03\x01" + half.to_bytes(2, "big") + body[:half]
           + b"\x16\x03\x01" + (len(body) - half).to_bytes(2, "big") + body[half:])
    hello = read_client_hello(two)
    assert isinstance(hello, ClientHello) and hello.server_name == "split.example.com" and hello.size == len(two)


@pytest.mark.parametrize("data", [b"GET / HTTP/1.1\r\n", b"\x00\x00\x00\x08", b"SSH-2.0-OpenSSH\r\n", b"PROXY TCP4"])
def test_not_tls(data: bytes) -> None:
    assert isinstance(read_client_hello(data), NotTLS)


def test_sslv2_counts_as_tls_without_name() -> None:
    assert read_client_hello(b"\x80\x2e\x01") == ClientHello("", (), 0)


@pytest.mark.parametrize("data", [
    b"\x16\x03\x01\x00\x05\x02\x00\x00\x01\x00",  # a ServerHello, not a ClientHello
    b"\x16\x03\x01\x00\x00",  # empty record
    b"\x16\x02\x00\x00\x05\x01\x00\x00\x01\x00",  # record version 2.0
    b"\x16\x03\x01\x00\x08\x01\x00\x00\x04\x03\x03\x00\x00",  # truncated body
    b"\x16\x03\x01\x00\x05\x01\x01\x00\x00\x00",  # announces 64 KiB
])
def test_malformed_hello(data: bytes) -> None:
    with pytest.raises(ValueError):
        read_client_hello(data)


def test_trailing_dot_server_name_is_refused() -> None:
    data = bytearray(openssl_hello("dot.example.com"))
    i = data.find(b"dot.example.com")
    data[i + len("dot.example.co"):i + len("dot.example.com")] = b"."
    with pytest.raises(ValueError):
        read_client_hello(bytes(data))


@given(st.binary(max_size=300))
def test_client_hello_never_crashes(data: bytes) -> None:
    try:
        read_client_hello(b"\x16\x03\x01" + data)
    except ValueError:
        pass


def test_postgres_starttls() -> None:
    assert postgres_starttls(POSTGRES_SSL_REQUEST + b"x") is True
    assert postgres_starttls(POSTGRES_SSL_REQUEST[:3]) is None
    assert postgres_starttls(b"\x00\x00\x00\x09") is False


# ------------------------------------------------------------------------------------------------- PROXY
@pytest.mark.parametrize(("data", "want"), [
    (b"PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\nGET /", ProxyHeader(47, ("192.168.0.1", 56324), ("192.168.0.11", 443), 1)),
    (b"PROXY TCP6 2001:db8::1 2001:db8::2 1234 80\r\n", ProxyHeader(44, ("2001:db8::1", 1234), ("2001:db8::2", 80), 1)),
    (b"PROXY UNKNOWN\r\n", ProxyHeader(15, None, None, 1)),
    (b"PROXY UNKNOWN ffff:f...f:ffff ffff:f...f:ffff 65535 65535\r\n", ProxyHeader(59, None, None, 1)),
])
def test_v1(data: bytes, want: ProxyHeader) -> None:
    assert read_header(data) == want


@pytest.mark.parametrize("data", [
    b"PROXY TCP4 192.168.0.1 192.168.0.11 56324\r\n", b"PROXY TCP4 2001:db8::1 192.168.0.11 1 2\r\n",
    b"PROXY TCP4 192.168.0.1 192.168.0.11 65536 1\r\n", b"PROXY TCP4 192.168.0.1 192.168.0.11 01 1\r\n",
    b"PROXY UDP4 1.1.1.1 2.2.2.2 1 2\r\n", b"PROXY " + b"x" * 120, b"PROXY TCP4 1.2.3.4\n",
])
def test_v1_malformed(data: bytes) -> None:
    with pytest.raises(ValueError):
        read_header(data)


@pytest.mark.parametrize("data", [b"", b"P", b"PROX", b"PROXY TCP4 1.2.3.4 ", b"\r\n\r\n\x00", b"\r\n\r\n\x00\r\nQUIT\n\x21\x11\x00"])
def test_need_more(data: bytes) -> None:
    assert read_header(data) is PP_MORE


@pytest.mark.parametrize("data", [b"GET / HTTP/1.1\r\n", b"\x16\x03\x01", b"PRIVMSG", b"\r\n\r\nx"])
def test_no_header(data: bytes) -> None:
    assert read_header(data) is NO_HEADER


@pytest.mark.parametrize(("src", "dst"), [(("10.1.2.3", 40000), ("10.0.0.1", 443)),
                                          (("2001:db8::7", 5), ("2001:db8::1", 8443))])
@pytest.mark.parametrize("version", [1, 2])
def test_round_trip(version: int, src: tuple[str, int], dst: tuple[str, int]) -> None:
    data = build_header(version, src, dst)
    header = read_header(data + b"payload")
    assert isinstance(header, ProxyHeader)
    assert (header.source, header.destination, header.version, header.size) == (src, dst, version, len(data))


def test_v2_layout_and_local_command() -> None:
    data = build_header(2, ("1.2.3.4", 1), ("5.6.7.8", 2))
    assert data == (b"\r\n\r\n\x00\r\nQUIT\n\x21\x11\x00\x0c" + bytes([1, 2, 3, 4, 5, 6, 7, 8]) + b"\x00\x01\x00\x02")
    local = b"\r\n\r\n\x00\r\nQUIT\n\x20\x00\x00\x00"
    assert read_header(local) == ProxyHeader(16, None, None, 2)
    tlvs = b"\r\n\r\n\x00\r\nQUIT\n\x21\x11\x00\x13" + bytes(12) + b"\x04\x00\x04abcd"
    assert read_header(tlvs) == ProxyHeader(35, ("0.0.0.0", 0), ("0.0.0.0", 0), 2)


@pytest.mark.parametrize("data", [
    b"\r\n\r\n\x00\r\nQUIT\n\x11\x11\x00\x0c" + bytes(12),  # version 1 in a v2 header
    b"\r\n\r\n\x00\r\nQUIT\n\x22\x11\x00\x0c" + bytes(12),  # command 2
    b"\r\n\r\n\x00\r\nQUIT\n\x21\x11\x00\x04" + bytes(4),  # IPv4 block too short
    b"\r\n\r\n\x00\r\nQUIT\n\x21\x31\x00\x04" + bytes(4),  # AF_UNIX
])
def test_v2_malformed(data: bytes) -> None:
    with pytest.raises(ValueError):
        read_header(data)


def test_mapped_v4_source_written_as_v4() -> None:
    assert build_header(1, ("::ffff:10.0.0.5", 7), ("10.0.0.1", 80)) == b"PROXY TCP4 10.0.0.5 10.0.0.1 7 80\r\n"
