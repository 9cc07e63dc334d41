"""What both HTTP/2 sides of the proxy share: the h2 session type and flow-controlled sending.

The framing, HPACK, flow-control accounting and stream state machine are the ``h2`` library's. Two
things are added here:

- :class:`H2Session` sends and receives a *graceful* GOAWAY without closing the streams still open
  (RFC 9113 6.8: streams up to the announced last stream id run to completion). ``h2`` itself moves
  the whole connection to CLOSED on any GOAWAY, which would cut those streams short.
- :class:`FieldCacheEncoder` encodes header blocks without HPACK's dynamic table (a table size update
  to 0 opens the connection's first block), so a field's encoding depends on the field alone and is
  computed once per worker: Python HPACK and Huffman work turn into one dict lookup per field, for a
  few bytes more on the wire per repeated field. Credentials (``authorization``, ``cookie``...) are
  sent "never indexed" and not kept.
- :class:`BlockCacheDecoder` decodes and validates each distinct header block once per connection: a
  block that only refers to the HPACK tables (as a client's repeated requests do once their fields are
  indexed) decodes to the same fields until the dynamic table changes, so the fields h2 would rebuild
  and re-validate for every stream come from a dict. h2's own inbound validation and normalization are
  therefore turned off (``INBOUND``) and run here instead, with h2's rules; the one thing only the
  stream state knows, whether a block is a head or trailers, is checked by :func:`misplaced_block`.
- :class:`Outbox` sends DATA as the peer's flow-control windows allow and queues the rest per stream,
  in order, with the stream's end (and trailers) after its last byte. Callers read ``backlog`` to
  stop their producer while a stream's queue is over ``HIGH_WATER``; ``flush`` after a WINDOW_UPDATE
  or a SETTINGS change says which streams went back under ``LOW_WATER``.
"""

from __future__ import annotations

from collections.abc import Iterable

from h2.config import DummyLogger, H2Configuration
from h2.connection import H2Connection
from h2.errors import ErrorCodes
from h2.events import ConnectionTerminated, Event
from h2.exceptions import ProtocolError, StreamClosedError, StreamIDTooLowError, TooManyStreamsError
from h2.settings import ChangedSetting, SettingCodes
from h2.utilities import HeaderValidationFlags, validate_headers
from hpack import Decoder, Encoder, HeaderTuple
from hpack.table import HeaderTable
from hyperframe.frame import Frame, GoAwayFrame, HeadersFrame, RstStreamFrame

__all__ = ["H2Session", "H2ServerSession", "Outbox", "FieldCacheEncoder", "BlockCacheDecoder", "h2_config", "misplaced_block", "PREFACE", "HIGH_WATER", "LOW_WATER", "Header", "goaway_bytes",
           "str_headers", "canonical_name"]

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
HIGH_WATER = 64 * 1024  # a stream's queued bytes above which its producer is paused (one default window)
LOW_WATER = 16 * 1024  # ... and below which it resumes

Header = tuple[bytes, bytes]


_FIELD_CACHE_MAX = 8192
_FIELD_CACHE_ITEM = 512  # longer fields are encoded each time
_SENSITIVE = frozenset((b"authorization", b"proxy-authorization", b"cookie", b"set-cookie"))
_FIELDS: dict[tuple[bytes, bytes], bytes] = {}


def _zero_table_encoder() -> Encoder:
    enc = Encoder()
    enc.header_table_size = 0
    enc.encode([])  # takes the pending size update: from here on every field encodes on its own
    return enc


_ZERO = _zero_table_encoder()


class FieldCacheEncoder(Encoder):
    """HPACK with a dynamic table of size 0: each field's bytes are cached for the whole worker."""

    def __init__(self) -> None:
        super().__init__()
        self.started = False

    def encode(self, headers: Iterable[tuple[bytes | str, bytes | str]], huffman: bool = True) -> bytes:  # type: ignore[override]
        out = [b""] if self.started else [b"\x20"]  # the first block sets the dynamic table size to 0
        self.started = True
        fields = _FIELDS
        for field in headers:
            encoded = fields.get(field)  # type: ignore[arg-type]  # h2 hands us (bytes, bytes) tuples
            if encoded is not None:
                out.append(encoded)
                continue
            name, value = field
            key = (name if isinstance(name, bytes) else name.encode(),
                   value if isinstance(value, bytes) else value.encode())
            encoded = fields.get(key)
            if encoded is None:
                if key[0] in _SENSITIVE:  # credentials: "never indexed" (RFC 7541 7.1.3), and never kept here
                    out.append(_ZERO.encode([(key[0], key[1], True)]))
                    continue
                encoded = _ZERO.encode([key])
                if len(key[0]) + len(key[1]) <= _FIELD_CACHE_ITEM:
                    if len(fields) >= _FIELD_CACHE_MAX:
                        fields.clear()
                    fields[key] = encoded
            out.append(encoded)
        return b"".join(out)


class _Silent(DummyLogger):
    """h2's logger when nothing is logged: ``"".format`` takes any arguments and returns at C speed, where
    h2's own no-op logger is a Python call (two dozen per proxied request)."""

    debug = trace = staticmethod("".format)  # type: ignore[assignment]


def h2_config(client_side: bool) -> H2Configuration:
    """h2's settings for both sides: fields as bytes; the proxy builds outbound blocks right itself, and
    received blocks are validated by ``BlockCacheDecoder`` (h2 would redo it for every block)."""
    return H2Configuration(client_side=client_side, header_encoding=None, validate_outbound_headers=False,
                           normalize_outbound_headers=False, validate_inbound_headers=False,
                           normalize_inbound_headers=False, logger=_Silent())


_BLOCK_CACHE_MAX = 64
_BLOCK_CACHE_ITEM = 4096  # longer blocks are decoded each time
# h2's validation rules per kind of block: (client side, trailers)
_FLAGS = {(side, trailer): HeaderValidationFlags(is_client=side, is_trailer=trailer,
                                                 is_response_header=side and not trailer, is_push_promise=False)
          for side in (False, True) for trailer in (False, True)}


class _CountedTable(HeaderTable):
    """An HPACK dynamic table that counts its changes (an entry added, a resize)."""

    def __init__(self) -> None:
        super().__init__()
        self.changes = 0

    def add(self, name: bytes, value: bytes) -> None:
        self.changes += 1
        super().add(name, value)

    @property  # type: ignore[override]
    def maxsize(self) -> int:
        return self._maxsize

    @maxsize.setter
    def maxsize(self, newmax: int) -> None:
        self.changes += 1
        HeaderTable.maxsize.fset(self, newmax)  # type: ignore[attr-defined]


class BlockCacheDecoder(Decoder):
    """HPACK decoding plus h2's header validation, remembered per block while the dynamic table stays as it
    was. A block that changed the table is never kept (decoding it again would change it again).

    A block that starts with a pseudo-header is validated as a head (a request on the server side, a
    response on the client side), any other as trailers; ``misplaced_block`` catches a block of the one
    kind where the stream expects the other.
    """

    header_table: _CountedTable

    def __init__(self, client_side: bool) -> None:
        self.blocks: dict[bytes, list[HeaderTuple]] = {}
        super().__init__()
        self.header_table = _CountedTable()
        self.client_side = client_side
        self.blocks_at = 0  # the table's change count the kept blocks were decoded at
        self._max_table = self.header_table.maxsize

    @property
    def max_header_list_size(self) -> int:
        return self._max_list

    @max_header_list_size.setter
    def max_header_list_size(self, value: int) -> None:
        self._max_list = value
        self.blocks.clear()  # kept blocks were measured against the old limit

    @property  # type: ignore[override]
    def max_allowed_table_size(self) -> int:
        return self._max_table

    @max_allowed_table_size.setter
    def max_allowed_table_size(self, value: int) -> None:
        self._max_table = value
        self.blocks.clear()  # a smaller limit may make the current table invalid: decode afresh

    def decode(self, data: bytes, raw: bool = False) -> list[HeaderTuple]:  # type: ignore[override]
        table = self.header_table
        blocks = self.blocks
        if self.blocks_at == table.changes:
            found = blocks.get(data)
            if found is not None:
                return found
        before = table.changes
        decoded = list(super().decode(data, raw=True))
        trailer = not decoded or decoded[0][0][:1] != b":"
        fields: list[HeaderTuple] = list(validate_headers(decoded, _FLAGS[(self.client_side, trailer)]))  # type: ignore[arg-type]
        if table.changes != before or table.changes != self.blocks_at:
            blocks.clear()
            self.blocks_at = table.changes
        elif len(data) <= _BLOCK_CACHE_ITEM:
            if len(blocks) >= _BLOCK_CACHE_MAX:
                blocks.clear()
            blocks[bytes(data)] = fields
        return fields


def misplaced_block(fields: list[Header], head: bool) -> bool:
    """A head without pseudo-headers, or trailers with them: h2 treats either as a protocol error."""
    return head != (bool(fields) and fields[0][0][:1] == b":")


class H2Session(H2Connection):
    """An ``h2`` connection whose GOAWAY handling keeps open streams alive.

    ``h2`` remembers closed streams so that late frames on them are stream errors, not connection
    errors; 4,096 of them (rather than 65,536) bound that memory per connection.
    """

    MAX_CLOSED_STREAMS = 4096

    def __init__(self, config: H2Configuration) -> None:
        super().__init__(config)
        self.encoder = FieldCacheEncoder()
        self.decoder = BlockCacheDecoder(bool(config.client_side))
        self.decoder.max_header_list_size = self.DEFAULT_MAX_HEADER_LIST_SIZE

    def _receive_frame(self, frame: Frame) -> list[Event]:
        # h2 formats every received frame for its trace log (``repr``, some 2 us a frame) whether or not
        # anything is logged; this handles a frame as h2 does, without that
        try:
            frames, events = self._frame_dispatch_table[frame.__class__](frame)
        except StreamClosedError as err:
            # a frame on a stream we reset is answered with RST_STREAM; on a stream closed otherwise
            # it is a connection error
            if not self._stream_is_closed_by_reset(err.stream_id):
                raise
            self._prepare_for_sending([_reset_frame(err.stream_id, err.error_code)])
            return list(err._events)
        except StreamIDTooLowError as err:
            # a stream id already used: a stream error after our reset, a connection error otherwise
            if self._stream_is_closed_by_reset(err.stream_id):
                self._prepare_for_sending([_reset_frame(err.stream_id, ErrorCodes.STREAM_CLOSED)])
                return []
            if self._stream_is_closed_by_end(err.stream_id):
                raise StreamClosedError(err.stream_id) from err
            raise
        self._prepare_for_sending(frames)
        return events

    def _receive_goaway_frame(self, frame: GoAwayFrame) -> tuple[list[Frame], list[Event]]:
        # h2 would move the connection to CLOSED and drop queued output; the streams at or below the
        # peer's last stream id are still to be answered, so only the event is produced here
        event = ConnectionTerminated()
        event.error_code = frame.error_code
        event.last_stream_id = frame.last_stream_id
        event.additional_data = frame.additional_data or None
        return [], [event]


class H2ServerSession(H2Session):
    """The server side: a stream beyond our MAX_CONCURRENT_STREAMS is refused alone, as Go's http2 server
    does (``h2`` would end the whole connection): ``REFUSED_STREAM`` while our SETTINGS are not
    acknowledged (the client could not know the limit yet: it may retry), ``PROTOCOL_ERROR`` after. Its
    header block is still decoded (HPACK state is the connection's); ``refused`` counts them for the
    caller."""

    def __init__(self, config: H2Configuration) -> None:
        super().__init__(config)
        self.settings_acked = False
        self.refused = 0  # streams refused for the stream limit, not yet seen by the caller
        self.limit_lifted = False

    @property
    def open_inbound_streams(self) -> int:
        return 0 if self.limit_lifted else super().open_inbound_streams

    def _receive_headers_frame(self, frame: HeadersFrame) -> tuple[list[Frame], list[Event]]:
        try:
            return super()._receive_headers_frame(frame)
        except TooManyStreamsError:
            pass
        # h2 checks the limit before anything else: open the stream as usual, then refuse it
        self.limit_lifted = True
        try:
            frames, events = super()._receive_headers_frame(frame)
        finally:
            self.limit_lifted = False
        sid = frame.stream_id
        self.reset_stream(sid, ErrorCodes.PROTOCOL_ERROR if self.settings_acked else ErrorCodes.REFUSED_STREAM)
        self.refused += 1
        return frames, [ev for ev in events if getattr(ev, "stream_id", None) != sid]

    def _local_settings_acked(self) -> dict[SettingCodes | int, ChangedSetting]:
        self.settings_acked = True
        return super()._local_settings_acked()


def _reset_frame(stream_id: int, code: int) -> RstStreamFrame:
    frame = RstStreamFrame(stream_id)
    frame.error_code = code
    return frame


def goaway_bytes(last_stream_id: int, error_code: int = 0, debug: bytes = b"") -> bytes:
    """A GOAWAY frame sent outside ``h2``'s state machine (a graceful one leaves the streams open)."""
    frame = GoAwayFrame(0)
    frame.last_stream_id = last_stream_id
    frame.error_code = error_code
    frame.additional_data = debug
    return frame.serialize()


_NAMES: dict[bytes, str] = {}
_NAMES_MAX = 4096


def canonical_name(name: bytes) -> str:
    """Go's CanonicalHeaderKey of a lower-case HTTP/2 field name (``content-type`` -> ``Content-Type``),
    as Traefik writes an HTTP/2 backend's fields to HTTP/1.1 clients."""
    found = _NAMES.get(name)
    if found is None:
        found = "-".join(p[:1].upper() + p[1:] for p in name.decode("latin-1").split("-"))
        if len(_NAMES) < _NAMES_MAX:
            _NAMES[name] = found
    return found


_STR_BLOCKS: dict[tuple[Header, ...], tuple[int, tuple[tuple[str, str], ...]]] = {}
_STR_BLOCKS_MAX = 1024
_STR_BLOCK_BYTES = 1024  # blocks with more field bytes are converted each time


def str_headers(headers: list[tuple[bytes, bytes]] | list[Header]) -> tuple[int, list[tuple[str, str]]]:
    """(``:status`` or 0, the regular fields with canonical names, latin-1 strings) of a decoded block.

    A server sends the same few blocks again and again (a gRPC answer's head and ``grpc-status: 0``
    trailers): their conversion is kept per worker, and each caller gets a list of its own."""
    key = tuple(headers)
    found = _STR_BLOCKS.get(key)
    if found is not None:
        return found[0], list(found[1])
    status = 0
    size = 0
    out: list[tuple[str, str]] = []
    for name, value in key:
        size += len(name) + len(value)
        if name[:1] == b":":
            if name == b":status" and value.isdigit():
                status = int(value)
            continue
        out.append((canonical_name(name), value.decode("latin-1")))
    if size <= _STR_BLOCK_BYTES:
        if len(_STR_BLOCKS) >= _STR_BLOCKS_MAX:
            _STR_BLOCKS.clear()
        _STR_BLOCKS[key] = (status, tuple(out))
    return status, out


class _Queued:
    __slots__ = ("chunks", "size", "end", "trailers")

    def __init__(self) -> None:
        self.chunks: list[bytes] = []
        self.size = 0
        self.end = False
        self.trailers: list[Header] | None = None


class Outbox:
    """DATA waiting for flow-control window, per stream, sent in order with the stream's end after it.

    ``paused`` (the transport's buffer is full) queues everything until ``flush``.
    """

    __slots__ = ("conn", "queued", "paused")

    def __init__(self, conn: H2Connection) -> None:
        self.conn = conn
        self.queued: dict[int, _Queued] = {}
        self.paused = False

    def data(self, sid: int, data: bytes, end: bool = False) -> int:
        """Send ``data`` on ``sid`` as far as the windows allow; returns the bytes still queued for it."""
        q = self.queued.get(sid)
        if q is None:
            conn = self.conn
            if not self.paused and len(data) <= conn.max_outbound_frame_size:
                try:
                    if len(data) <= conn.local_flow_control_window(sid):
                        conn.send_data(sid, data, end_stream=end)
                        return 0
                except ProtocolError:  # the stream is gone (reset by the peer): nothing to send
                    return 0
            q = self.queued[sid] = _Queued()
        if data:
            q.chunks.append(data)
            q.size += len(data)
        if end:
            q.end = True
        self._drain(sid, q)
        return q.size

    def end(self, sid: int, trailers: list[Header] | None = None) -> None:
        """End the stream after what is queued for it, with trailers when given."""
        q = self.queued.get(sid)
        if q is None:
            try:
                if trailers:
                    self.conn.send_headers(sid, trailers, end_stream=True)
                else:
                    self.conn.end_stream(sid)
            except ProtocolError:
                pass
            return
        q.end = True
        q.trailers = trailers
        self._drain(sid, q)

    def backlog(self, sid: int) -> int:
        q = self.queued.get(sid)
        return 0 if q is None else q.size

    def drop(self, sid: int) -> None:
        self.queued.pop(sid, None)

    def flush(self) -> list[int]:
        """Send what the windows now allow; the streams whose queue went from above LOW_WATER to below."""
        if self.paused:
            return []
        resumed = []
        for sid, q in list(self.queued.items()):
            before = q.size
            self._drain(sid, q)
            if before > LOW_WATER >= q.size:
                resumed.append(sid)
        return resumed

    def _drain(self, sid: int, q: _Queued) -> None:
        """Send from the queue as far as the windows allow; a queue that empties is dropped (after the
        stream's end when it was to end)."""
        if self.paused:
            return
        conn = self.conn
        try:
            while q.chunks:
                window = min(conn.local_flow_control_window(sid), conn.max_outbound_frame_size)
                if window <= 0:
                    return
                chunk = q.chunks[0]
                if len(chunk) > window:
                    q.chunks[0] = chunk[window:]
                    q.size -= window
                    conn.send_data(sid, chunk[:window])
                    continue
                del q.chunks[0]
                q.size -= len(chunk)
                if not q.chunks and q.end and not q.trailers:
                    conn.send_data(sid, chunk, end_stream=True)
                    del self.queued[sid]
                    return
                conn.send_data(sid, chunk)
            if q.end:
                if q.trailers:
                    conn.send_headers(sid, q.trailers, end_stream=True)
                else:
                    conn.end_stream(sid)
            del self.queued[sid]
        except ProtocolError:  # reset by the peer meanwhile
            q.size = 0
            self.queued.pop(sid, None)
