"""Bad HTTP/2 input: each attack shape ends the stream or the connection with the right error code, memory
stays bounded, and other connections keep being served (RFC 9113 5.4, 6.5.2, 10.5; CVE-2023-44487 rapid
reset; CVE-2024-27316 CONTINUATION flood; CVE-2019-9512/9515/9518 ping, settings and empty-frame floods)."""

from __future__ import annotations

import asyncio

import pytest
from h2.errors import ErrorCodes
from h2_support import PREFACE, H2Client, RawH2, client_tls, goaway_of, with_tls
from hpack import Encoder
from hyperframe.frame import (
    ContinuationFrame,
    DataFrame,
    Frame,
    HeadersFrame,
    PingFrame,
    RstStreamFrame,
    SettingsFrame,
    WindowUpdateFrame,
)
from ingress_support import http, service_yaml

from pyk3s.addons.ingress.proxy.h2conn import HIGH_WATER

ROUTE = """
apiVersion: traefik.io/v1alpha1
kind: IngressRoute
metadata: {name: r, namespace: default}
spec:
  routes:
  - match: Host(`a`)
    kind: Rule
    services: [{name: whoami, port: 80}]
---
"""


async def _proxy(make_proxy, backend, *flags: str):
    proxy = await make_proxy("--entrypoints.web.address=127.0.0.1:0", "--providers.kubernetescrd", *flags)
    proxy.load(service_yaml("whoami", backend.port) + ROUTE)
    return proxy


def _headers(sid: int, path: str = "/", end_stream: bool = True, end_headers: bool = True,
             encoder: Encoder | None = None, extra: list[tuple[bytes, bytes]] | None = None) -> HeadersFrame:
    enc = encoder or Encoder()
    f = HeadersFrame(sid)
    f.data = enc.encode([(b":method", b"GET"), (b":scheme", b"http"), (b":authority", b"a"), (b":path", path.encode()),
                         *(extra or [])])
    if end_stream:
        f.flags.add("END_STREAM")
    if end_headers:
        f.flags.add("END_HEADERS")
    return f


def _frame(f: Frame) -> bytes:
    return f.serialize()


async def _start(port: int) -> RawH2:
    raw = await RawH2.connect(port)
    raw.send(PREFACE, SettingsFrame(0).serialize())
    return raw


async def _still_serving(proxy, backend) -> None:
    """Another connection, opened now, is served."""
    c = await H2Client.connect(proxy.port)
    r = await c.request("/ok", "a")
    c.close()
    assert r.status == 200
    r1 = await http(proxy.port, "/ok", host="a")
    assert r1.status == 200


async def _expect_goaway(raw: RawH2, code: ErrorCodes, timeout: float = 5.0) -> None:
    frames = await raw.frames(timeout)
    goaway = goaway_of(frames)
    assert goaway is not None, [type(f).__name__ for f in frames]
    assert goaway.error_code == code, (goaway.error_code, goaway.additional_data)
    assert await raw.closed(5.0)


# ------------------------------------------------------------------------------------------- preface
async def test_bad_preface_over_tls_alpn_h2(make_proxy, backend):
    proxy = await make_proxy("--entrypoints.websecure.address=127.0.0.1:0", "--entrypoints.websecure.http.tls=true",
                             "--providers.kubernetescrd")
    await with_tls(proxy, ["websecure"])
    proxy.load(service_yaml("whoami", backend.port) + ROUTE)
    raw = await RawH2.connect(proxy.ports["websecure"], client_tls(("h2",)))
    raw.send(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
    await _expect_goaway(raw, ErrorCodes.PROTOCOL_ERROR)


async def test_broken_h2c_preface_is_a_bad_http11_request(make_proxy, backend):
    proxy = await _proxy(make_proxy, backend)
    r = await http(proxy.port, raw=b"PRI * HTTP/2.0\r\n\r\nXX\r\n\r\n")
    assert r.status == 400
    await _still_serving(proxy, backend)


# ------------------------------------------------------------------------------------------- invalid frames
def _raw(kind: int, flags: int, sid: int, payload: bytes) -> bytes:
    """A frame as bytes, valid or not (hyperframe refuses to build the invalid ones)."""
    return len(payload).to_bytes(3, "big") + bytes((kind, flags)) + sid.to_bytes(4, "big") + payload


@pytest.mark.parametrize("frame,code", [
    (_raw(0x0, 0, 0, b"x"), ErrorCodes.PROTOCOL_ERROR),  # DATA on the connection stream
    (_raw(0x8, 0, 0, b"\0\0\0\0"), ErrorCodes.PROTOCOL_ERROR),  # WINDOW_UPDATE of zero
    (_raw(0x3, 0, 0, b"\0\0\0\x08"), ErrorCodes.PROTOCOL_ERROR),  # RST_STREAM on stream 0
    (_raw(0x6, 0, 1, b"12345678"), ErrorCodes.PROTOCOL_ERROR),  # PING on a stream
    (_raw(0x6, 0, 0, b"1234"), ErrorCodes.FRAME_SIZE_ERROR),  # PING of 4 bytes
    (_raw(0x4, 0, 0, b"\0\x04\0"), ErrorCodes.FRAME_SIZE_ERROR),  # SETTINGS not a multiple of 6
    (_raw(0x9, 0x4, 1, b""), ErrorCodes.PROTOCOL_ERROR),  # CONTINUATION without HEADERS
], ids=["data-stream0", "window-update-0", "rst-stream0", "ping-stream1", "ping-short", "settings-odd",
        "naked-continuation"])
async def test_invalid_frames_end_the_connection(make_proxy, backend, frame, code):
    proxy = await _proxy(make_proxy, backend)
    raw = await _start(proxy.port)
    raw.send(frame)
    await _expect_goaway(raw, code)
    await _still_serving(proxy, backend)


async def test_malformed_request_blocks(make_proxy, backend):
    proxy = await _proxy(make_proxy, backend)
    for bad in ([(b"Upper", b"x")], [(b"connection", b"close")], [(b":unknown", b"x")]):
        raw = await _start(proxy.port)
        raw.send(_frame(_headers(1, extra=bad)))
        await _expect_goaway(raw, ErrorCodes.PROTOCOL_ERROR)
    for fields in ([(b"x-only", b"regular")], []):  # a request head without its pseudo-headers
        raw = await _start(proxy.port)
        f = HeadersFrame(1, Encoder().encode(fields), flags=["END_STREAM", "END_HEADERS"])
        raw.send(_frame(f))
        await _expect_goaway(raw, ErrorCodes.PROTOCOL_ERROR)
    raw = await _start(proxy.port)  # trailers with a pseudo-header
    enc = Encoder()
    trailers = HeadersFrame(1, enc.encode([(b":path", b"/")]), flags=["END_STREAM", "END_HEADERS"])
    raw.send(_frame(_headers(1, end_stream=False, encoder=enc)), _frame(trailers))
    await _expect_goaway(raw, ErrorCodes.PROTOCOL_ERROR)
    raw = await _start(proxy.port)  # a block that was fine as a head is still refused as trailers
    enc = Encoder()
    head = _headers(1, end_stream=False, encoder=enc)
    again = HeadersFrame(1, head.data, flags=["END_STREAM", "END_HEADERS"])
    raw.send(_frame(head), _frame(again))
    await _expect_goaway(raw, ErrorCodes.PROTOCOL_ERROR)
    raw = await _start(proxy.port)
    raw.send(_frame(_headers(2)))  # a client may not open an even stream
    await _expect_goaway(raw, ErrorCodes.PROTOCOL_ERROR)
    raw = await _start(proxy.port)
    big = DataFrame(1, b"x" * 20000)  # over the 16 KiB frame size nobody raised
    raw.send(_frame(_headers(1, end_stream=False)), _frame(big))
    await _expect_goaway(raw, ErrorCodes.FRAME_SIZE_ERROR)
    await _still_serving(proxy, backend)


async def test_header_list_over_the_limit(make_proxy, backend):
    """An HPACK bomb: 4 KB in the dynamic table, referenced 300 times (1.2 MB decoded from 5 KB)."""
    proxy = await _proxy(make_proxy, backend)
    raw = await _start(proxy.port)
    f = _headers(1, extra=[(b"x-big", b"a" * 4000)] * 300)
    assert len(f.data) < 16384
    raw.send(_frame(f))
    await _expect_goaway(raw, ErrorCodes.ENHANCE_YOUR_CALM)
    await _still_serving(proxy, backend)


# ------------------------------------------------------------------------------------------- floods
@pytest.mark.parametrize("acked", [False, True])
async def test_a_stream_beyond_max_concurrent_streams_is_refused_alone(make_proxy, backend, acked):
    """As Go's http2 server: RST_STREAM REFUSED_STREAM before the client acknowledged our SETTINGS (it
    could not know the limit), PROTOCOL_ERROR after; the connection and its other streams go on."""
    proxy = await _proxy(make_proxy, backend, "--entrypoints.web.http2.maxConcurrentStreams=10")
    raw = await _start(proxy.port)
    enc = Encoder()
    if acked:
        ack = SettingsFrame(0)
        ack.flags.add("ACK")
        raw.send(_frame(ack))
    raw.send(*[_frame(_headers(1 + 2 * i, end_stream=False, encoder=enc)) for i in range(11)])
    frames = await raw.frames(1.0, until_goaway=False)
    resets = [(f.stream_id, f.error_code) for f in frames if isinstance(f, RstStreamFrame)]
    assert resets == [(21, ErrorCodes.PROTOCOL_ERROR if acked else ErrorCodes.REFUSED_STREAM)]
    assert goaway_of(frames) is None
    end = DataFrame(1)
    end.flags.add("END_STREAM")
    raw.send(_frame(end), _frame(_headers(23, encoder=enc)))  # a slot is free again once stream 1 is answered
    frames = await raw.frames(2.0, until_goaway=False)
    answered = {f.stream_id for f in frames if isinstance(f, HeadersFrame)}
    assert 1 in answered and goaway_of(frames) is None
    raw.close()


async def test_stream_flood_beyond_max_concurrent_streams(make_proxy, backend):
    """Each refused stream costs the abuse budget: a client that keeps opening them is cut off."""
    proxy = await _proxy(make_proxy, backend, "--entrypoints.web.http2.maxConcurrentStreams=10")
    raw = await _start(proxy.port)
    enc = Encoder()
    raw.send(*[_frame(_headers(1 + 2 * i, end_stream=False, encoder=enc)) for i in range(1200)])
    await _expect_goaway(raw, ErrorCodes.ENHANCE_YOUR_CALM, timeout=30.0)
    await _still_serving(proxy, backend)


async def test_rapid_reset(make_proxy, backend):
    proxy = await _proxy(make_proxy, backend)
    bystander = await H2Client.connect(proxy.port)
    raw = await _start(proxy.port)
    enc = Encoder()
    before = len(backend.requests)
    for batch in range(20):
        chunk = []
        for i in range(100):
            sid = 1 + 2 * (batch * 100 + i)
            rst = RstStreamFrame(sid)
            rst.error_code = ErrorCodes.CANCEL
            chunk += [_frame(_headers(sid, encoder=enc)), _frame(rst)]
        raw.send(*chunk)
        await asyncio.sleep(0)
    await _expect_goaway(raw, ErrorCodes.ENHANCE_YOUR_CALM, timeout=30.0)  # 2,000 streams to refuse, on a loaded machine too
    # the attacker got at most its budget of work done, and nothing of it is left behind
    assert len(backend.requests) - before <= 1100
    assert len(proxy.state.h2_clients) == 1  # the bystander's
    r = await bystander.request("/bystander", "a")
    assert r.status == 200
    bystander.close()
    await _still_serving(proxy, backend)


async def test_continuation_flood(make_proxy, backend):
    proxy = await _proxy(make_proxy, backend)
    raw = await _start(proxy.port)
    first = _headers(1, end_headers=False)
    raw.send(_frame(first), *[_frame(ContinuationFrame(1, b"\x00" * 16384)) for _ in range(100)])
    await _expect_goaway(raw, ErrorCodes.PROTOCOL_ERROR)
    # an endless header block of tiny frames stops at the same bound
    raw = await _start(proxy.port)
    raw.send(_frame(_headers(1, end_headers=False)), *[_frame(ContinuationFrame(1, b"")) for _ in range(1000)])
    await _expect_goaway(raw, ErrorCodes.PROTOCOL_ERROR)
    await _still_serving(proxy, backend)


@pytest.mark.parametrize("settings,code", [
    ({SettingsFrame.INITIAL_WINDOW_SIZE: 2**31}, ErrorCodes.FLOW_CONTROL_ERROR),
    ({SettingsFrame.ENABLE_PUSH: 2}, ErrorCodes.PROTOCOL_ERROR),
    ({SettingsFrame.MAX_FRAME_SIZE: 100}, ErrorCodes.PROTOCOL_ERROR),
], ids=["window-too-large", "enable-push-2", "frame-size-too-small"])
async def test_bad_settings_values(make_proxy, backend, settings, code):
    proxy = await _proxy(make_proxy, backend)
    raw = await _start(proxy.port)
    raw.send(_frame(SettingsFrame(0, settings=settings)))
    await _expect_goaway(raw, code)
    await _still_serving(proxy, backend)


@pytest.mark.parametrize("kind", ["settings", "ping", "empty-data", "priority-like unknown"])
async def test_control_frame_floods(make_proxy, backend, kind):
    proxy = await _proxy(make_proxy, backend)
    raw = await _start(proxy.port)
    if kind == "settings":
        frames = [_frame(SettingsFrame(0, settings={SettingsFrame.HEADER_TABLE_SIZE: 4096})) for _ in range(1500)]
    elif kind == "ping":
        frames = [_frame(PingFrame(0, b"%08d" % i)) for i in range(12000)]
    elif kind == "empty-data":
        frames = [_frame(_headers(1, path="/slow", end_stream=False))] + [_frame(DataFrame(1, b"")) for _ in range(1500)]
    else:
        unknown = b"\x00\x00\x01\x2a\x00\x00\x00\x00\x00x"  # type 0x2a: extension frames are ignored, but counted
        frames = [unknown] * 1500
    raw.send(*frames)
    await _expect_goaway(raw, ErrorCodes.ENHANCE_YOUR_CALM)
    await _still_serving(proxy, backend)


async def test_a_client_that_does_not_read_is_bounded(make_proxy, backend):
    """Huge windows granted, 20 large answers asked for, nothing read: the proxy stops producing."""
    proxy = await _proxy(make_proxy, backend)
    raw = await RawH2.connect(proxy.port)
    raw.send(PREFACE, _frame(SettingsFrame(0, settings={SettingsFrame.INITIAL_WINDOW_SIZE: 2**31 - 1})),
             _frame(WindowUpdateFrame(0, 2**31 - 1 - 65535)))
    enc = Encoder()
    raw.send(*[_frame(_headers(1 + 2 * i, path="/big", encoder=enc)) for i in range(20)])
    await asyncio.sleep(1.5)
    conn = next(iter(proxy.state.h2_clients))
    queued = sum(q.size for q in conn.outbox.queued.values())
    buffered = conn.transport.get_write_buffer_size()
    # 20 streams x 200 KB = 4 MB asked for; held: at most a high-water mark (plus one read) per stream
    assert queued <= 20 * (HIGH_WATER + 256 * 1024)
    assert buffered <= 1 << 20
    raw.close()
    await _still_serving(proxy, backend)
