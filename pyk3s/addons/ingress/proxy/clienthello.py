"""What the first bytes of a connection say, without consuming them (sans-IO: bytes in, verdict out).

- :func:`read_client_hello`: a TLS ClientHello (handshake record 0x16, possibly spread over several
  records) -> its server name (SNI) and ALPN protocols; :data:`NEED_MORE` while it is incomplete;
  :class:`NotTLS` for anything that does not start like TLS; ``ValueError`` for a malformed one. A
  first byte 0x80 (an SSLv2-style hello) counts as TLS without a name, as in Traefik: the TLS stack then
  refuses it.
- :func:`postgres_starttls`: the 8-byte Postgres SSLRequest that opens a STARTTLS exchange (Traefik
  answers ``S`` and reads the ClientHello that follows).

A ClientHello above :data:`MAX_HELLO` bytes is refused.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, cast

__all__ = ["ClientHello", "NotTLS", "NEED_MORE", "read_client_hello", "postgres_starttls", "POSTGRES_SSL_REQUEST",
           "POSTGRES_SSL_ACCEPT", "MAX_HELLO"]

MAX_HELLO: Final = 1 << 16
POSTGRES_SSL_REQUEST: Final = b"\x00\x00\x00\x08\x04\xd2\x16\x2f"
POSTGRES_SSL_ACCEPT: Final = b"S"


@dataclass(frozen=True, slots=True)
class ClientHello:
    server_name: str
    alpn: tuple[str, ...]
    size: int  # bytes of the records that carried it


@dataclass(frozen=True, slots=True)
class NotTLS:
    pass


class _NeedMore:
    __slots__ = ()

    def __repr__(self) -> str:
        return "NEED_MORE"


NEED_MORE: Final = _NeedMore()
_NOT_TLS = NotTLS()


def postgres_starttls(data: bytes) -> bool | None:
    """True: the Postgres SSLRequest; False: not it; None: a prefix of it, read more."""
    n = min(len(data), len(POSTGRES_SSL_REQUEST))
    if data[:n] != POSTGRES_SSL_REQUEST[:n]:
        return False
    return True if n == len(POSTGRES_SSL_REQUEST) else None


def _handshake_bytes(data: bytes) -> tuple[bytes, int] | _NeedMore:
    """Concatenate handshake records until the ClientHello message is whole: (message, bytes used)."""
    out = bytearray()
    pos = 0
    while True:
        if len(data) < pos + 5:
            return NEED_MORE
        if data[pos] != 0x16:
            raise ValueError("TLS record of another type inside the ClientHello")
        if data[pos + 1] != 0x03:
            raise ValueError("unsupported TLS record version")
        length = int.from_bytes(data[pos + 3:pos + 5], "big")
        if length == 0 or length > 16384 + 2048:
            raise ValueError("bad TLS record length")
        if len(data) < pos + 5 + length:
            return NEED_MORE
        out += data[pos + 5:pos + 5 + length]
        pos += 5 + length
        if len(out) >= 4:
            if out[0] != 0x01:
                raise ValueError("first handshake message is not a ClientHello")
            want = 4 + int.from_bytes(out[1:4], "big")
            if want > MAX_HELLO:
                raise ValueError("ClientHello too large")
            if len(out) >= want:
                return bytes(out[:want]), pos
        if pos > MAX_HELLO:
            raise ValueError("ClientHello too large")


class _Reader:
    __slots__ = ("buf", "pos", "end")

    def __init__(self, buf: bytes, pos: int = 0, end: int | None = None) -> None:
        self.buf, self.pos, self.end = buf, pos, len(buf) if end is None else end

    def take(self, n: int) -> bytes:
        if self.pos + n > self.end:
            raise ValueError("truncated ClientHello")
        out = self.buf[self.pos:self.pos + n]
        self.pos += n
        return out

    def number(self, n: int) -> int:
        return int.from_bytes(self.take(n), "big")

    def vector(self, len_bytes: int) -> _Reader:
        n = self.number(len_bytes)
        if self.pos + n > self.end:
            raise ValueError("truncated ClientHello")
        sub = _Reader(self.buf, self.pos, self.pos + n)
        self.pos += n
        return sub

    @property
    def left(self) -> int:
        return self.end - self.pos


def _parse_hello(msg: bytes) -> tuple[str, tuple[str, ...]]:
    r = _Reader(msg, 4)
    r.take(2)  # legacy_version
    r.take(32)  # random
    r.vector(1)  # session id
    suites = r.vector(2)
    if suites.left == 0 or suites.left % 2:
        raise ValueError("bad cipher suites")
    if r.vector(1).left == 0:
        raise ValueError("no compression methods")
    server_name, alpn = "", cast(tuple[str, ...], ())
    if r.left == 0:
        return server_name, alpn
    exts = r.vector(2)
    seen: set[int] = set()
    while exts.left:
        etype = exts.number(2)
        body = exts.vector(2)
        if etype in seen:
            raise ValueError(f"duplicate extension {etype}")
        seen.add(etype)
        if etype == 0:  # server_name
            names = body.vector(2)
            while names.left:
                kind = names.number(1)
                value = names.vector(2)
                raw = value.take(value.left)
                if kind == 0 and not server_name:
                    # RFC 6066 section 3: no trailing dot (Go's TLS stack refuses such a hello)
                    if not raw or b"\x00" in raw or raw.endswith(b"."):
                        raise ValueError("bad server name")
                    try:
                        server_name = raw.decode("ascii")
                    except UnicodeDecodeError:
                        raise ValueError("server name is not ASCII") from None
        elif etype == 16:  # application_layer_protocol_negotiation
            protos = body.vector(2)
            found: list[str] = []
            while protos.left:
                p = protos.vector(1)
                if p.left == 0:
                    raise ValueError("empty ALPN protocol")
                found.append(p.take(p.left).decode("latin-1"))
            alpn = tuple(found)
    if r.left:
        raise ValueError("trailing bytes after ClientHello extensions")
    return server_name, alpn


def read_client_hello(data: bytes) -> ClientHello | NotTLS | _NeedMore:
    """The ClientHello at the start of ``data`` (see the module docstring)."""
    if not data:
        return NEED_MORE
    first = data[0]
    if first == 0x80:
        return ClientHello("", (), 0)
    if first != 0x16:
        return _NOT_TLS
    got = _handshake_bytes(data)
    if isinstance(got, _NeedMore):
        return got
    msg, used = got
    name, alpn = _parse_hello(msg)
    return ClientHello(name, alpn, used)
