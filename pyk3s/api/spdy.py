"""SPDY/3.1 framing as a sans-I/O state machine: bytes in -> events, calls -> bytes out.

kubectl speaks SPDY/3.1 for port-forward (and exec before 1.30), through the Go ``spdystream``
package. A :class:`SpdyConnection` does no I/O: feed what the peer sent to :meth:`receive_data`,
act on the returned events, call the frame methods, and write :meth:`data_to_send` to the peer.

Frames (all big-endian): a control frame is ``1 | version(15) | type(16) | flags(8) | length(24) |
payload``; a data frame is ``0 | stream id(31) | flags(8) | length(24) | data``. Header blocks
(SYN_STREAM, SYN_REPLY, HEADERS) are ``count(32)`` then ``len(32) name len(32) value`` pairs, zlib
compressed with the SPDY/3 dictionary, one compression context per direction for the whole session,
each block ended with a sync flush. Names are lower-case; a value may hold several values split by NUL.

Behaviour the state machine takes on itself: a peer's PING is answered; a SYN_STREAM with a stream id
of the wrong parity or not above the last one is refused with RST_STREAM(PROTOCOL_ERROR); DATA for a
stream never opened gets RST_STREAM(INVALID_STREAM), DATA for a stream already closed is dropped.
WINDOW_UPDATE is parsed and can be sent, but windows are not enforced in either direction: the Go
peers neither send nor honour them, so backpressure comes from the transport.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass
from enum import IntEnum

__all__ = [
    "DICTIONARY", "DataReceived", "Event", "GoAwayReceived", "GoAwayStatus", "HeadersReceived", "PingReceived",
    "ReplyReceived", "RstStatus", "SettingsReceived", "SpdyConnection", "SpdyProtocolError", "StreamOpened",
    "StreamReset", "WindowUpdated", "header_block", "parse_header_block",
]

VERSION = 3
SYN_STREAM, SYN_REPLY, RST_STREAM, SETTINGS, PING, GOAWAY, HEADERS, WINDOW_UPDATE = 1, 2, 3, 4, 6, 7, 8, 9
FLAG_FIN = 0x01
FLAG_UNIDIRECTIONAL = 0x02
FLAG_CLEAR_SETTINGS = 0x01
MAX_LENGTH = (1 << 24) - 1
DATA_CHUNK = 32 * 1024  # data frames we write are at most this long, so streams interleave

Headers = tuple[tuple[str, str], ...]


class RstStatus(IntEnum):
    PROTOCOL_ERROR = 1
    INVALID_STREAM = 2
    REFUSED_STREAM = 3
    UNSUPPORTED_VERSION = 4
    CANCEL = 5
    INTERNAL_ERROR = 6
    FLOW_CONTROL_ERROR = 7
    STREAM_IN_USE = 8
    STREAM_ALREADY_CLOSED = 9
    FRAME_TOO_LARGE = 11


class GoAwayStatus(IntEnum):
    OK = 0
    PROTOCOL_ERROR = 1
    INTERNAL_ERROR = 2


# The SPDY/3 header dictionary: length-prefixed header names and common values, then a run of
# status codes, reason phrases, dates and media types (draft-mbelshe-httpbis-spdy-00, 2.6.10.1).
_DICT_WORDS = (
    "options", "head", "post", "put", "delete", "trace", "accept", "accept-charset", "accept-encoding",
    "accept-language", "accept-ranges", "age", "allow", "authorization", "cache-control", "connection",
    "content-base", "content-encoding", "content-language", "content-length", "content-location",
    "content-md5", "content-range", "content-type", "date", "etag", "expect", "expires", "from", "host",
    "if-match", "if-modified-since", "if-none-match", "if-range", "if-unmodified-since", "last-modified",
    "location", "max-forwards", "pragma", "proxy-authenticate", "proxy-authorization", "range", "referer",
    "retry-after", "server", "te", "trailer", "transfer-encoding", "upgrade", "user-agent", "vary", "via",
    "warning", "www-authenticate", "method", "get", "status", "200 OK", "version", "HTTP/1.1", "url",
    "public", "set-cookie", "keep-alive", "origin",
)
_DICT_TAIL = (
    "100101201202205206300302303304305306307402405406407408409410411412413414415416417502504505"
    "203 Non-Authoritative Information204 No Content301 Moved Permanently400 Bad Request401 Unauthorized"
    "403 Forbidden404 Not Found500 Internal Server Error501 Not Implemented503 Service Unavailable"
    "Jan Feb Mar Apr May Jun Jul Aug Sept Oct Nov Dec 00:00:00 Mon, Tue, Wed, Thu, Fri, Sat, Sun, GMT"
    "chunked,text/html,image/png,image/jpg,image/gif,application/xml,application/xhtml+xml,text/plain,"
    "text/javascript,publicprivatemax-age=gzip,deflate,sdchcharset=utf-8charset=iso-8859-1,utf-,*,enq=0."
)
DICTIONARY = b"".join(struct.pack(">I", len(w)) + w.encode() for w in _DICT_WORDS) + _DICT_TAIL.encode()


class SpdyProtocolError(Exception):
    """The peer broke the framing; the session cannot go on (send GOAWAY and close)."""


# -- events -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StreamOpened:
    stream_id: int
    headers: Headers
    fin: bool = False
    unidirectional: bool = False
    associated_id: int = 0
    priority: int = 0

    def header(self, name: str) -> str | None:
        return _lookup(self.headers, name)


@dataclass(frozen=True, slots=True)
class ReplyReceived:
    stream_id: int
    headers: Headers
    fin: bool = False


@dataclass(frozen=True, slots=True)
class HeadersReceived:
    stream_id: int
    headers: Headers
    fin: bool = False


@dataclass(frozen=True, slots=True)
class DataReceived:
    stream_id: int
    data: bytes
    fin: bool = False


@dataclass(frozen=True, slots=True)
class StreamReset:
    stream_id: int
    status: int


@dataclass(frozen=True, slots=True)
class SettingsReceived:
    settings: tuple[tuple[int, int, int], ...]  # (id, value, flags)
    clear: bool = False


@dataclass(frozen=True, slots=True)
class PingReceived:
    ping_id: int
    is_reply: bool  # an answer to our own ping (else we already queued the echo)


@dataclass(frozen=True, slots=True)
class GoAwayReceived:
    last_good_stream_id: int
    status: int


@dataclass(frozen=True, slots=True)
class WindowUpdated:
    stream_id: int
    delta: int


Event = (StreamOpened | ReplyReceived | HeadersReceived | DataReceived | StreamReset | SettingsReceived
         | PingReceived | GoAwayReceived | WindowUpdated)


def _lookup(headers: Headers, name: str) -> str | None:
    name = name.lower()
    return next((v for k, v in headers if k == name), None)


# -- header blocks ----------------------------------------------------------------------------


def header_block(headers: Headers | dict[str, str]) -> bytes:
    """The uncompressed name/value block (names lower-cased)."""
    items = headers.items() if isinstance(headers, dict) else headers
    parts = [b""]
    n = 0
    for name, value in items:
        k, v = name.lower().encode(), value.encode()
        parts.append(struct.pack(">I", len(k)) + k + struct.pack(">I", len(v)) + v)
        n += 1
    parts[0] = struct.pack(">I", n)
    return b"".join(parts)


def parse_header_block(raw: bytes) -> Headers:
    try:
        (count,) = struct.unpack_from(">I", raw, 0)
        pos, out = 4, []
        for _ in range(count):
            (klen,) = struct.unpack_from(">I", raw, pos)
            name = raw[pos + 4:pos + 4 + klen]
            pos += 4 + klen
            (vlen,) = struct.unpack_from(">I", raw, pos)
            value = raw[pos + 4:pos + 4 + vlen]
            pos += 4 + vlen
            if len(name) != klen or len(value) != vlen or not klen:
                raise SpdyProtocolError("spdy: truncated or empty header name in header block")
            out.append((name.decode("latin-1").lower(), value.decode("latin-1")))
    except struct.error:
        raise SpdyProtocolError("spdy: truncated header block") from None
    return tuple(out)


# -- the connection ---------------------------------------------------------------------------


@dataclass(slots=True)
class _Stream:
    local_closed: bool = False
    remote_closed: bool = False


class SpdyConnection:
    """One SPDY/3.1 session, client (odd stream and ping ids) or server (even ids)."""

    def __init__(self, *, client: bool) -> None:
        self.client = client
        self.streams: dict[int, _Stream] = {}
        self._next_stream_id = 1 if client else 2
        self._next_ping_id = 1 if client else 2
        self._last_peer_stream_id = 0
        self._inbuf = bytearray()
        self._out: list[bytes] = []
        self._deflate = zlib.compressobj(zlib.Z_DEFAULT_COMPRESSION, zlib.DEFLATED, 15, zdict=DICTIONARY)
        self._inflate = zlib.decompressobj(15, zdict=DICTIONARY)
        self.goaway_sent = False
        self.goaway_received = False

    # -- output ----------------------------------------------------------------------------

    def data_to_send(self) -> bytes:
        out = b"".join(self._out)
        self._out.clear()
        return out

    def _control(self, ftype: int, flags: int, payload: bytes) -> None:
        if len(payload) > MAX_LENGTH:
            raise ValueError(f"spdy: control frame type {ftype} too long ({len(payload)} bytes)")
        self._out.append(struct.pack(">HHI", 0x8000 | VERSION, ftype, (flags << 24) | len(payload)) + payload)

    def _compress(self, headers: Headers | dict[str, str]) -> bytes:
        return self._deflate.compress(header_block(headers)) + self._deflate.flush(zlib.Z_SYNC_FLUSH)

    def _close_local(self, stream_id: int) -> None:
        st = self.streams.get(stream_id)
        if st is not None:
            st.local_closed = True
            if st.remote_closed:
                del self.streams[stream_id]

    def open_stream(self, headers: Headers | dict[str, str], *, fin: bool = False, unidirectional: bool = False,
                    priority: int = 0, associated_id: int = 0) -> int:
        stream_id = self._next_stream_id
        self._next_stream_id += 2
        flags = (FLAG_FIN if fin else 0) | (FLAG_UNIDIRECTIONAL if unidirectional else 0)
        payload = struct.pack(">IIBB", stream_id, associated_id, (priority & 7) << 5, 0) + self._compress(headers)
        self._control(SYN_STREAM, flags, payload)
        self.streams[stream_id] = _Stream(local_closed=fin, remote_closed=unidirectional)
        return stream_id

    def reply(self, stream_id: int, headers: Headers | dict[str, str] = (), *, fin: bool = False) -> None:
        self._control(SYN_REPLY, FLAG_FIN if fin else 0, struct.pack(">I", stream_id) + self._compress(headers))
        if fin:
            self._close_local(stream_id)

    def send_headers(self, stream_id: int, headers: Headers | dict[str, str], *, fin: bool = False) -> None:
        self._control(HEADERS, FLAG_FIN if fin else 0, struct.pack(">I", stream_id) + self._compress(headers))
        if fin:
            self._close_local(stream_id)

    def send_data(self, stream_id: int, data: bytes, *, fin: bool = False) -> None:
        st = self.streams.get(stream_id)
        if st is None or st.local_closed:
            raise ValueError(f"spdy: stream {stream_id} is not open for sending")
        view = memoryview(data)
        while len(view) > DATA_CHUNK:
            self._out.append(struct.pack(">II", stream_id, DATA_CHUNK) + view[:DATA_CHUNK].tobytes())
            view = view[DATA_CHUNK:]
        if view or fin:
            self._out.append(struct.pack(">II", stream_id, ((FLAG_FIN if fin else 0) << 24) | len(view))
                             + view.tobytes())
        if fin:
            self._close_local(stream_id)

    def can_send(self, stream_id: int) -> bool:
        st = self.streams.get(stream_id)
        return st is not None and not st.local_closed

    def reset_stream(self, stream_id: int, status: int = RstStatus.CANCEL) -> None:
        self._control(RST_STREAM, 0, struct.pack(">II", stream_id, int(status)))
        self.streams.pop(stream_id, None)

    def send_settings(self, settings: dict[int, int], *, clear: bool = False) -> None:
        body = b"".join(struct.pack(">II", sid & 0xFFFFFF, value) for sid, value in settings.items())
        self._control(SETTINGS, FLAG_CLEAR_SETTINGS if clear else 0, struct.pack(">I", len(settings)) + body)

    def ping(self) -> int:
        ping_id = self._next_ping_id
        self._next_ping_id += 2
        self._control(PING, 0, struct.pack(">I", ping_id))
        return ping_id

    def goaway(self, status: int = GoAwayStatus.OK) -> None:
        self.goaway_sent = True
        self._control(GOAWAY, 0, struct.pack(">II", self._last_peer_stream_id, int(status)))

    def window_update(self, stream_id: int, delta: int) -> None:
        self._control(WINDOW_UPDATE, 0, struct.pack(">II", stream_id, delta & 0x7FFFFFFF))

    # -- input -----------------------------------------------------------------------------

    def receive_data(self, data: bytes) -> list[Event]:
        """Parse whole frames out of what arrived so far; a partial frame waits for more bytes."""
        self._inbuf += data
        events: list[Event] = []
        buf = self._inbuf
        pos = 0
        while len(buf) - pos >= 8:
            word, flags_len = struct.unpack_from(">II", buf, pos)
            length = flags_len & 0xFFFFFF
            if len(buf) - pos - 8 < length:
                break
            payload = bytes(buf[pos + 8:pos + 8 + length])
            pos += 8 + length
            flags = flags_len >> 24
            if word & 0x80000000:
                version, ftype = (word >> 16) & 0x7FFF, word & 0xFFFF
                if version != VERSION:
                    del buf[:pos]
                    raise SpdyProtocolError(f"spdy: unsupported version {version} in control frame")
                ev = self._on_control(ftype, flags, payload)
            else:
                ev = self._on_data(word & 0x7FFFFFFF, flags, payload)
            if ev is not None:
                events.append(ev)
        del buf[:pos]
        return events

    def _headers_of(self, block: bytes) -> Headers:
        if not block:
            return ()
        try:
            raw = self._inflate.decompress(block)
        except zlib.error as err:
            raise SpdyProtocolError(f"spdy: header block does not decompress: {err}") from None
        return parse_header_block(raw)

    def _on_control(self, ftype: int, flags: int, p: bytes) -> Event | None:  # noqa: PLR0911
        try:
            if ftype == SYN_STREAM:
                stream_id, assoc, prio = struct.unpack_from(">IIB", p, 0)
                stream_id &= 0x7FFFFFFF
                headers = self._headers_of(p[10:])  # always inflate: the zlib context is shared
                if stream_id == 0 or (stream_id % 2 == 1) != (not self.client) \
                        or stream_id <= self._last_peer_stream_id:
                    self.reset_stream(stream_id, RstStatus.PROTOCOL_ERROR)
                    return None
                self._last_peer_stream_id = stream_id
                fin, uni = bool(flags & FLAG_FIN), bool(flags & FLAG_UNIDIRECTIONAL)
                self.streams[stream_id] = _Stream(local_closed=uni, remote_closed=fin)
                return StreamOpened(stream_id, headers, fin, uni, assoc & 0x7FFFFFFF, prio >> 5)
            if ftype in (SYN_REPLY, HEADERS):
                (stream_id,) = struct.unpack_from(">I", p, 0)
                stream_id &= 0x7FFFFFFF
                headers = self._headers_of(p[4:])
                fin = bool(flags & FLAG_FIN)
                if fin:
                    self._close_remote(stream_id)
                cls = ReplyReceived if ftype == SYN_REPLY else HeadersReceived
                return cls(stream_id, headers, fin)
            if ftype == RST_STREAM:
                stream_id, status = struct.unpack_from(">II", p, 0)
                stream_id &= 0x7FFFFFFF
                self.streams.pop(stream_id, None)
                return StreamReset(stream_id, status)
            if ftype == SETTINGS:
                (count,) = struct.unpack_from(">I", p, 0)
                entries = []
                for i in range(count):
                    id_flags, value = struct.unpack_from(">II", p, 4 + 8 * i)
                    entries.append((id_flags & 0xFFFFFF, value, id_flags >> 24))
                return SettingsReceived(tuple(entries), bool(flags & FLAG_CLEAR_SETTINGS))
            if ftype == PING:
                (ping_id,) = struct.unpack_from(">I", p, 0)
                ours = (ping_id % 2 == 1) == self.client
                if not ours:
                    self._control(PING, 0, p[:4])
                return PingReceived(ping_id, ours)
            if ftype == GOAWAY:
                last, status = struct.unpack_from(">II", p, 0) if len(p) >= 8 else (*struct.unpack_from(">I", p, 0), 0)
                self.goaway_received = True
                return GoAwayReceived(last & 0x7FFFFFFF, status)
            if ftype == WINDOW_UPDATE:
                stream_id, delta = struct.unpack_from(">II", p, 0)
                return WindowUpdated(stream_id & 0x7FFFFFFF, delta & 0x7FFFFFFF)
        except struct.error:
            raise SpdyProtocolError(f"spdy: control frame type {ftype} too short ({len(p)} bytes)") from None
        return None  # unknown control frame types are ignored, as SPDY/3 asks

    def _close_remote(self, stream_id: int) -> None:
        st = self.streams.get(stream_id)
        if st is not None:
            st.remote_closed = True
            if st.local_closed:
                del self.streams[stream_id]

    def _on_data(self, stream_id: int, flags: int, data: bytes) -> Event | None:
        st = self.streams.get(stream_id)
        if st is None or st.remote_closed:
            peer_parity = (stream_id % 2 == 1) != self.client
            opened_by_us = not peer_parity and stream_id < self._next_stream_id
            if stream_id and st is None and not opened_by_us and stream_id > self._last_peer_stream_id:
                self.reset_stream(stream_id, RstStatus.INVALID_STREAM)
            return None
        fin = bool(flags & 0x01)
        if fin:
            self._close_remote(stream_id)
        return DataReceived(stream_id, data, fin)
