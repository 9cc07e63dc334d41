"""The h2 session's header-block decoding: blocks decoded and validated once while the HPACK table holds
still, with h2's validation rules."""

from __future__ import annotations

import pytest
from h2.exceptions import ProtocolError
from hpack import Encoder, HPACKDecodingError, OversizedHeaderListError

from pyk3s.addons.ingress.proxy.h2conn import BlockCacheDecoder, misplaced_block

REQUEST = [(b":method", b"GET"), (b":scheme", b"http"), (b":authority", b"a"), (b":path", b"/"),
           (b"user-agent", b"t")]


def test_a_block_that_only_refers_to_the_table_is_kept():
    enc, dec = Encoder(), BlockCacheDecoder(client_side=False)
    first = enc.encode(REQUEST)  # literals that enter the dynamic table: not kept
    assert dec.decode(first, raw=True) == REQUEST
    assert not dec.blocks
    again = enc.encode(REQUEST)  # indexed references only
    assert again != first
    fields = dec.decode(again, raw=True)
    assert fields == REQUEST and again in dec.blocks
    assert dec.decode(again, raw=True) is fields


def test_a_table_change_drops_the_kept_blocks():
    enc, dec = Encoder(), BlockCacheDecoder(client_side=False)
    dec.decode(enc.encode(REQUEST), raw=True)
    indexed = enc.encode(REQUEST)
    dec.decode(indexed, raw=True)
    assert indexed in dec.blocks
    # a new field enters the table at index 62 and moves the others: the same bytes now mean other fields
    other = [*REQUEST[:4], (b"x-new", b"1")]
    assert dec.decode(enc.encode(other), raw=True) == other
    assert not dec.blocks
    with pytest.raises(ProtocolError):  # decoded afresh: the old references now put a pseudo-header last
        dec.decode(indexed, raw=True)
    again = enc.encode(other)
    dec.decode(again, raw=True)
    assert again in dec.blocks
    changes = dec.header_table.changes
    dec.header_table_size = 0  # a resize empties the table
    assert dec.header_table.changes != changes
    with pytest.raises(HPACKDecodingError):
        dec.decode(again, raw=True)


def test_the_limits_drop_the_kept_blocks():
    enc, dec = Encoder(), BlockCacheDecoder(client_side=False)
    dec.decode(enc.encode(REQUEST), raw=True)
    dec.decode(enc.encode(REQUEST), raw=True)
    assert dec.blocks
    dec.max_header_list_size = 10
    assert not dec.blocks
    with pytest.raises(OversizedHeaderListError):  # the new limit applies to a block kept before
        dec.decode(enc.encode(REQUEST), raw=True)
    dec.max_allowed_table_size = 100
    assert not dec.blocks


@pytest.mark.parametrize("fields", [
    [*REQUEST, (b"Upper", b"x")],
    [*REQUEST, (b"connection", b"close")],
    [*REQUEST, (b"te", b"gzip")],
    [*REQUEST, (b"x", b"a\r\nb")],
    [(b":method", b"GET"), (b":authority", b"a"), (b":path", b"/")],  # no :scheme
    [*REQUEST[:2], (b"x", b"1"), *REQUEST[2:4]],  # a pseudo-header after a regular one
    [*REQUEST, (b":method", b"POST")],
    [(b":status", b"200")],  # a response field in a request
], ids=["upper", "connection", "te", "crlf", "no-scheme", "order", "duplicate", "status"])
def test_invalid_request_blocks_are_protocol_errors(fields):
    dec = BlockCacheDecoder(client_side=False)
    with pytest.raises(ProtocolError):
        dec.decode(Encoder().encode(fields), raw=True)


def test_the_client_side_validates_responses_and_trailers():
    dec = BlockCacheDecoder(client_side=True)
    assert dec.decode(Encoder().encode([(b":status", b"200"), (b"a", b"b")]), raw=True)[0] == (b":status", b"200")
    assert dec.decode(Encoder().encode([(b"grpc-status", b"0")]), raw=True) == [(b"grpc-status", b"0")]
    with pytest.raises(ProtocolError):
        dec.decode(Encoder().encode([(b":method", b"GET")]), raw=True)
    with pytest.raises(ProtocolError):
        dec.decode(Encoder().encode([(b"grpc-status", b"0"), (b":status", b"200")]), raw=True)


def test_misplaced_blocks():
    assert not misplaced_block(REQUEST, True)
    assert misplaced_block([(b"a", b"b")], True)
    assert misplaced_block([], True)
    assert not misplaced_block([(b"a", b"b")], False)
    assert not misplaced_block([], False)
    assert misplaced_block(REQUEST, False)


def test_str_headers_keeps_repeated_blocks_and_hands_out_lists_of_their_own():
    from pyk3s.addons.ingress.proxy import h2conn

    block = [(b":status", b"200"), (b"content-type", b"application/grpc"), (b"grpc-status", b"0")]
    first = h2conn.str_headers(block)
    assert first == (200, [("Content-Type", "application/grpc"), ("Grpc-Status", "0")])
    first[1].append(("X-Added", "by a middleware"))
    assert h2conn.str_headers(list(block)) == (200, [("Content-Type", "application/grpc"), ("Grpc-Status", "0")])
    big = [(b":status", b"200"), (b"set-cookie", b"x" * 2000)]
    assert h2conn.str_headers(big)[1] == [("Set-Cookie", "x" * 2000)]
    assert tuple(big) not in h2conn._STR_BLOCKS  # large blocks are converted each time, not kept


def _frames_of(data: bytes) -> list[tuple[str, int, int | None]]:
    from hyperframe.frame import Frame

    out = []
    while len(data) >= 9:
        frame, length = Frame.parse_frame_header(memoryview(data[:9]))
        frame.parse_body(memoryview(data[9:9 + length]))
        data = data[9 + length:]
        out.append((type(frame).__name__, frame.stream_id, getattr(frame, "error_code", None)))
    return out


def _late_frames(session_cls: type, after: str) -> tuple[str, list[tuple[str, int, int | None]]]:
    """A server connection of ``session_cls`` gets a frame on stream 1 after that stream was reset by
    us (``reset``) or ended both ways (``ended``): (the exception raised or "", the frames it answers)."""
    from h2.config import H2Configuration
    from h2.connection import H2Connection
    from h2.errors import ErrorCodes
    from hyperframe.frame import DataFrame

    from pyk3s.addons.ingress.proxy.h2conn import h2_config

    client = H2Connection(H2Configuration(client_side=True))
    client.initiate_connection()
    server = session_cls(h2_config(False))
    server.initiate_connection()
    client.receive_data(server.data_to_send())
    request = [(b":method", b"POST"), (b":scheme", b"http"), (b":authority", b"a"), (b":path", b"/")]
    client.send_headers(1, request, end_stream=after == "ended")
    server.receive_data(client.data_to_send())
    if after == "reset":
        server.reset_stream(1, ErrorCodes.CANCEL)
    else:
        server.send_headers(1, [(b":status", b"200")], end_stream=True)
    server.data_to_send()
    late = DataFrame(1)
    late.data = b"late"
    try:
        server.receive_data(late.serialize())
    except ProtocolError as err:
        return type(err).__name__, _frames_of(server.data_to_send())
    return "", _frames_of(server.data_to_send())


@pytest.mark.parametrize("after", ["reset", "ended"])
def test_session_answers_frames_on_closed_streams_as_h2_does(after):
    from h2.connection import H2Connection

    from pyk3s.addons.ingress.proxy.h2conn import H2ServerSession

    ours = _late_frames(H2ServerSession, after)
    assert ours == _late_frames(H2Connection, after)
    assert ours == ("", [("RstStreamFrame", 1, 5)])  # a stream error: RST_STREAM STREAM_CLOSED
