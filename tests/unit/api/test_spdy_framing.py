"""SPDY/3.1 state machine (pyk3s.api.spdy) against hand-built frames and against itself."""

from __future__ import annotations

import struct
import zlib

import pytest

from pyk3s.api.spdy import (
    DATA_CHUNK,
    DICTIONARY,
    DataReceived,
    GoAwayReceived,
    HeadersReceived,
    PingReceived,
    ReplyReceived,
    RstStatus,
    SettingsReceived,
    SpdyConnection,
    SpdyProtocolError,
    StreamOpened,
    StreamReset,
    WindowUpdated,
    header_block,
    parse_header_block,
)


class PeerCompressor:
    """The peer's side of the header compression: one zlib stream, sync-flushed per block."""

    def __init__(self) -> None:
        self.z = zlib.compressobj(9, zlib.DEFLATED, 15, zdict=DICTIONARY)

    def block(self, pairs: list[tuple[str, str]]) -> bytes:
        raw = struct.pack(">I", len(pairs)) + b"".join(
            struct.pack(">I", len(k)) + k.encode() + struct.pack(">I", len(v)) + v.encode() for k, v in pairs)
        return self.z.compress(raw) + self.z.flush(zlib.Z_SYNC_FLUSH)


def control(ftype: int, flags: int, payload: bytes, version: int = 3) -> bytes:
    return struct.pack(">HHI", 0x8000 | version, ftype, (flags << 24) | len(payload)) + payload


def syn_stream(comp: PeerCompressor, stream_id: int, pairs: list[tuple[str, str]], flags: int = 0) -> bytes:
    return control(1, flags, struct.pack(">IIBB", stream_id, 0, 0, 0) + comp.block(pairs))


def data_frame(stream_id: int, data: bytes, fin: bool = False) -> bytes:
    return struct.pack(">II", stream_id, ((1 if fin else 0) << 24) | len(data)) + data


def split_frames(raw: bytes) -> list[tuple[bool, int, int, bytes]]:
    """(is_control, type or stream id, flags, payload) for each frame in ``raw``."""
    out, pos = [], 0
    while pos < len(raw):
        word, flags_len = struct.unpack_from(">II", raw, pos)
        length = flags_len & 0xFFFFFF
        payload = raw[pos + 8:pos + 8 + length]
        assert len(payload) == length
        if word & 0x80000000:
            assert (word >> 16) & 0x7FFF == 3
            out.append((True, word & 0xFFFF, flags_len >> 24, payload))
        else:
            out.append((False, word, flags_len >> 24, payload))
        pos += 8 + length
    return out


PF_HEADERS = [("streamtype", "error"), ("port", "80"), ("requestid", "0")]


def test_dictionary_shape() -> None:
    assert DICTIONARY.startswith(b"\x00\x00\x00\x07options\x00\x00\x00\x04head")
    assert b"\x00\x00\x00\x06origin100101201" in DICTIONARY
    assert DICTIONARY.endswith(b"charset=iso-8859-1,utf-,*,enq=0.")


def test_header_block_round_trip() -> None:
    raw = header_block({"StreamType": "data", "Port": "8080"})
    assert raw == (b"\x00\x00\x00\x02" + b"\x00\x00\x00\x0astreamtype\x00\x00\x00\x04data"
                   + b"\x00\x00\x00\x04port\x00\x00\x00\x048080")
    assert parse_header_block(raw) == (("streamtype", "data"), ("port", "8080"))
    with pytest.raises(SpdyProtocolError):
        parse_header_block(raw[:-2])


def test_syn_stream_from_client_opens_a_stream() -> None:
    server = SpdyConnection(client=False)
    comp = PeerCompressor()
    events = server.receive_data(syn_stream(comp, 1, PF_HEADERS))
    assert events == [StreamOpened(1, tuple(PF_HEADERS))]
    assert events[0].header("StreamType") == "error" and events[0].header("missing") is None
    # the compression context carries over: a second block from the same peer still inflates
    events = server.receive_data(syn_stream(comp, 3, [("streamtype", "data"), ("port", "80"), ("requestid", "0")]))
    assert isinstance(events[0], StreamOpened) and events[0].header("streamtype") == "data"
    assert server.data_to_send() == b""


def test_partial_frames_wait_for_the_rest() -> None:
    server = SpdyConnection(client=False)
    comp = PeerCompressor()
    wire = syn_stream(comp, 1, PF_HEADERS) + data_frame(1, b"hello") + data_frame(1, b"", fin=True)
    events = []
    for i in range(len(wire)):
        events += server.receive_data(wire[i:i + 1])
    assert events == [StreamOpened(1, tuple(PF_HEADERS)), DataReceived(1, b"hello"), DataReceived(1, b"", True)]


def test_reply_and_data_frames_on_the_wire() -> None:
    server = SpdyConnection(client=False)
    server.receive_data(syn_stream(PeerCompressor(), 1, PF_HEADERS))
    server.reply(1)
    payload = b"x" * (DATA_CHUNK + 10)
    server.send_data(1, payload, fin=True)
    frames = split_frames(server.data_to_send())
    is_ctl, ftype, flags, body = frames[0]
    assert (is_ctl, ftype, flags) == (True, 2, 0)
    assert struct.unpack_from(">I", body)[0] == 1
    inflate = zlib.decompressobj(15, zdict=DICTIONARY)
    assert inflate.decompress(body[4:]) == b"\x00\x00\x00\x00"
    assert [(c, sid, f, len(p)) for c, sid, f, p in frames[1:]] == [(False, 1, 0, DATA_CHUNK), (False, 1, 1, 10)]
    with pytest.raises(ValueError, match="not open"):
        server.send_data(1, b"late")


def test_stream_forgotten_once_both_sides_closed() -> None:
    server = SpdyConnection(client=False)
    server.receive_data(syn_stream(PeerCompressor(), 1, PF_HEADERS, flags=1))  # FIN: client sends nothing
    server.reply(1)
    assert server.can_send(1)
    server.send_data(1, b"", fin=True)
    assert 1 not in server.streams and not server.can_send(1)


def test_peer_ping_is_echoed_and_own_ping_is_a_reply() -> None:
    server = SpdyConnection(client=False)
    assert server.receive_data(control(6, 0, struct.pack(">I", 7))) == [PingReceived(7, False)]
    assert server.data_to_send() == control(6, 0, struct.pack(">I", 7))
    ping_id = server.ping()
    assert ping_id % 2 == 0
    assert split_frames(server.data_to_send()) == [(True, 6, 0, struct.pack(">I", ping_id))]
    assert server.receive_data(control(6, 0, struct.pack(">I", ping_id))) == [PingReceived(ping_id, True)]
    assert server.data_to_send() == b""


def test_bad_stream_ids_are_refused() -> None:
    server = SpdyConnection(client=False)
    comp = PeerCompressor()
    assert server.receive_data(syn_stream(comp, 2, PF_HEADERS)) == []  # even ids are the server's own
    assert split_frames(server.data_to_send()) == [(True, 3, 0, struct.pack(">II", 2, RstStatus.PROTOCOL_ERROR))]
    server.receive_data(syn_stream(comp, 5, PF_HEADERS))
    assert server.receive_data(syn_stream(comp, 3, PF_HEADERS)) == []  # ids must grow
    assert split_frames(server.data_to_send()) == [(True, 3, 0, struct.pack(">II", 3, RstStatus.PROTOCOL_ERROR))]


def test_data_for_unknown_and_closed_streams() -> None:
    server = SpdyConnection(client=False)
    assert server.receive_data(data_frame(9, b"?")) == []
    assert split_frames(server.data_to_send()) == [(True, 3, 0, struct.pack(">II", 9, RstStatus.INVALID_STREAM))]
    server.receive_data(syn_stream(PeerCompressor(), 11, PF_HEADERS))
    server.receive_data(data_frame(11, b"", fin=True))
    assert server.receive_data(data_frame(11, b"after fin")) == []
    assert server.data_to_send() == b""


def test_rst_settings_window_goaway_headers() -> None:
    server = SpdyConnection(client=False)
    comp = PeerCompressor()
    server.receive_data(syn_stream(comp, 1, PF_HEADERS))
    wire = (control(8, 1, struct.pack(">I", 1) + comp.block([("x-extra", "a\x00b")]))
            + control(3, 0, struct.pack(">II", 1, RstStatus.CANCEL))
            + control(4, 1, struct.pack(">I", 2) + struct.pack(">II", (1 << 24) | 7, 65536)
                      + struct.pack(">II", 4, 100))
            + control(9, 0, struct.pack(">II", 0, 4096))
            + control(7, 0, struct.pack(">II", 1, 0))
            + control(0x77, 0, b"ignored"))
    assert server.receive_data(wire) == [
        HeadersReceived(1, (("x-extra", "a\x00b"),), True),
        StreamReset(1, RstStatus.CANCEL),
        SettingsReceived(((7, 65536, 1), (4, 100, 0)), clear=True),
        WindowUpdated(0, 4096),
        GoAwayReceived(1, 0),
    ]
    assert 1 not in server.streams and server.goaway_received


def test_framing_errors() -> None:
    with pytest.raises(SpdyProtocolError, match="version 2"):
        SpdyConnection(client=False).receive_data(control(6, 0, b"\0\0\0\1", version=2))
    with pytest.raises(SpdyProtocolError, match="decompress"):
        SpdyConnection(client=False).receive_data(control(1, 0, struct.pack(">IIBB", 1, 0, 0, 0) + b"garbage!"))
    with pytest.raises(SpdyProtocolError, match="too short"):
        SpdyConnection(client=False).receive_data(control(3, 0, b"\0\0"))


def test_client_and_server_talk() -> None:
    client, server = SpdyConnection(client=True), SpdyConnection(client=False)
    sid = client.open_stream({"streamType": "data", "port": "80", "requestID": "4"})
    assert sid == 1 and client.open_stream({"streamType": "error"}, fin=True) == 3
    opened = server.receive_data(client.data_to_send())
    assert [(e.stream_id, e.header("requestid"), e.fin) for e in opened] == [(1, "4", False), (3, None, True)]
    server.reply(1)
    server.reply(3, {"ok": "1"})
    server.send_data(1, b"pong")
    server.send_settings({7: 1 << 20})
    server.window_update(1, 1000)
    server.goaway()
    got = client.receive_data(server.data_to_send())
    assert got == [ReplyReceived(1, ()), ReplyReceived(3, (("ok", "1"),)), DataReceived(1, b"pong"),
                   SettingsReceived(((7, 1 << 20, 0),)), WindowUpdated(1, 1000), GoAwayReceived(3, 0)]
    client.send_data(1, b"ping", fin=True)
    client.reset_stream(3)
    assert server.receive_data(client.data_to_send()) == [DataReceived(1, b"ping", True),
                                                          StreamReset(3, RstStatus.CANCEL)]
