"""HTTP/2 test helpers: a gRPC backend (grpcio, outside pyk3s: it plays the pods), a small HTTP/2 client
on the h2 library for exact frames, trailers and headers, and a raw frame reader for the bad-input tests."""

from __future__ import annotations

import asyncio
import datetime
import ssl
import threading
import time
from collections.abc import Iterator
from concurrent import futures
from dataclasses import dataclass, field
from typing import Any

import grpc
from h2.config import H2Configuration
from h2.connection import H2Connection
from h2.events import (
    ConnectionTerminated,
    DataReceived,
    ResponseReceived,
    StreamEnded,
    StreamReset,
    TrailersReceived,
)
from hyperframe.frame import Frame, GoAwayFrame

from pyk3s.addons.ingress.proxy.server import start_entrypoints
from pyk3s.addons.ingress.runner import _install_tls, _ssl_for

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"


# ------------------------------------------------------------------------------------------- gRPC backend
@dataclass
class GrpcBackend:
    """A grpcio server with raw-bytes methods on service ``pk.Echo``: Unary (echo; ``fail`` aborts with
    INVALID_ARGUMENT; ``sleep<seconds>`` sleeps), Server (``n`` -> n items), Client (joins), Bidi (upper)."""

    tls: tuple[bytes, bytes] | None = None  # (cert, key) PEM
    port: int = 0
    cancelled: list[str] = field(default_factory=list)
    peers: set[str] = field(default_factory=set)
    server: Any = None

    def start(self) -> GrpcBackend:
        def unary(req: bytes, ctx: grpc.ServicerContext) -> bytes:
            self.peers.add(ctx.peer())
            ctx.set_trailing_metadata((("x-trail", "t1"),))
            if req == b"fail":
                ctx.abort(grpc.StatusCode.INVALID_ARGUMENT, "bad thing \u00fc")
            if req.startswith(b"sleep"):
                end = time.monotonic() + float(req[5:])
                while time.monotonic() < end:
                    if not ctx.is_active():
                        self.cancelled.append("unary")
                        break
                    time.sleep(0.02)
            return b"echo:" + req

        def server_stream(req: bytes, ctx: grpc.ServicerContext) -> Iterator[bytes]:
            for i in range(int(req)):
                yield b"item%d" % i

        def client_stream(it: Iterator[bytes], ctx: grpc.ServicerContext) -> bytes:
            return b",".join(it)

        def bidi(it: Iterator[bytes], ctx: grpc.ServicerContext) -> Iterator[bytes]:
            for m in it:
                yield m.upper()

        handler = grpc.method_handlers_generic_handler("pk.Echo", {
            "Unary": grpc.unary_unary_rpc_method_handler(unary),
            "Server": grpc.unary_stream_rpc_method_handler(server_stream),
            "Client": grpc.stream_unary_rpc_method_handler(client_stream),
            "Bidi": grpc.stream_stream_rpc_method_handler(bidi),
        })
        self.server = grpc.server(futures.ThreadPoolExecutor(16))
        self.server.add_generic_rpc_handlers((handler,))
        if self.tls is not None:
            creds = grpc.ssl_server_credentials([(self.tls[1], self.tls[0])])
            self.port = self.server.add_secure_port("127.0.0.1:0", creds)
        else:
            self.port = self.server.add_insecure_port("127.0.0.1:0")
        self.server.start()
        return self

    def stop(self) -> None:
        self.server.stop(0)


def grpc_call(port: int, authority: str, method: str, request: Any, kind: str = "unary",
              timeout: float = 10.0) -> Any:
    """One call through the proxy with a real grpcio client (run it in a thread)."""
    with grpc.insecure_channel(f"127.0.0.1:{port}", options=[("grpc.default_authority", authority)]) as ch:
        path = f"/pk.Echo/{method}"
        if kind == "unary":
            return ch.unary_unary(path).with_call(request, timeout=timeout)
        if kind == "server":
            return list(ch.unary_stream(path)(request, timeout=timeout))
        if kind == "client":
            return ch.stream_unary(path)(iter(request), timeout=timeout)
        return list(ch.stream_stream(path)(iter(request), timeout=timeout))


async def in_thread(fn: Any, *args: Any, **kw: Any) -> Any:
    return await asyncio.get_running_loop().run_in_executor(None, lambda: fn(*args, **kw))


# ------------------------------------------------------------------------------------------- TLS
def self_signed(*names: str) -> tuple[bytes, bytes]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), critical=False)
            .sign(key, hashes.SHA256()))
    return (cert.public_bytes(serialization.Encoding.PEM),
            key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                              serialization.NoEncryption()))


def client_tls(alpn: tuple[str, ...] = ("h2", "http/1.1")) -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.set_alpn_protocols(list(alpn))
    return ctx


async def with_tls(proxy: Any, names: list[str]) -> None:
    """Restart the fixture's listeners with the TLS store (entry points flagged http.tls)."""
    for s in proxy.servers:
        s.close()
    _install_tls(proxy.state)
    proxy.servers = await start_entrypoints(proxy.state, names, _ssl_for(proxy.state))
    proxy.ports = {n: s.sockets[0].getsockname()[1] for n, s in zip(names, proxy.servers, strict=True)}


# ------------------------------------------------------------------------------------------- h2 client
@dataclass
class H2Response:
    status: int = 0
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    trailers: dict[str, str] = field(default_factory=dict)
    reset: int | None = None
    frames_of_head: int = 0  # HEADERS frames before the end (1 and ended: Trailers-Only)
    ended_with_headers: bool = False


class H2Client:
    """A plain h2-library client over one connection; ``request`` runs one stream to its end."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.conn = H2Connection(H2Configuration(client_side=True, header_encoding="utf-8"))
        self.conn.initiate_connection()
        self.writer.write(self.conn.data_to_send())
        self.responses: dict[int, H2Response] = {}
        self.done: dict[int, asyncio.Event] = {}
        self.goaway: ConnectionTerminated | None = None
        self.closed = asyncio.Event()
        self.task = asyncio.get_running_loop().create_task(self._read())

    @classmethod
    async def connect(cls, port: int, tls: ssl.SSLContext | None = None, sni: str | None = None) -> H2Client:
        reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=tls, server_hostname=sni if tls else None)
        return cls(reader, writer)

    async def _read(self) -> None:
        try:
            while True:
                data = await self.reader.read(65536)
                if not data:
                    break
                for ev in self.conn.receive_data(data):
                    self._event(ev)
                self.writer.write(self.conn.data_to_send())
        except Exception:  # noqa: BLE001 - the test reads the outcome from the events
            pass
        finally:
            self.closed.set()
            for e in self.done.values():
                e.set()

    def _event(self, ev: Any) -> None:
        sid = getattr(ev, "stream_id", None)
        r = self.responses.get(sid) if sid is not None else None
        if isinstance(ev, ResponseReceived) and r is not None:
            r.status = int(dict(ev.headers)[":status"])
            r.headers = {k: v for k, v in ev.headers if not k.startswith(":")}
            r.frames_of_head += 1
            r.ended_with_headers = ev.stream_ended is not None
        elif isinstance(ev, DataReceived) and r is not None:
            r.body += ev.data
            self.conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
        elif isinstance(ev, TrailersReceived) and r is not None:
            r.trailers = dict(ev.headers)
        elif isinstance(ev, StreamEnded) and sid in self.done:
            self.done[sid].set()
        elif isinstance(ev, StreamReset) and r is not None:
            r.reset = int(ev.error_code)
            self.done[sid].set()
        elif isinstance(ev, ConnectionTerminated):
            self.goaway = ev

    def start(self, path: str, authority: str, method: str = "GET", headers: list[tuple[str, str]] | None = None,
              body: bytes | None = None, end: bool = True) -> int:
        sid = self.conn.get_next_available_stream_id()
        self.responses[sid] = H2Response()
        self.done[sid] = asyncio.Event()
        fields = [(":method", method), (":scheme", "http"), (":authority", authority), (":path", path),
                  *(headers or [])]
        self.conn.send_headers(sid, fields, end_stream=end and not body)
        if body:
            self.conn.send_data(sid, body, end_stream=end)
        self.writer.write(self.conn.data_to_send())
        return sid

    async def finish(self, sid: int, timeout: float = 10.0) -> H2Response:
        await asyncio.wait_for(self.done[sid].wait(), timeout)
        return self.responses[sid]

    async def request(self, path: str, authority: str, method: str = "GET",
                      headers: list[tuple[str, str]] | None = None, body: bytes | None = None,
                      timeout: float = 10.0) -> H2Response:
        return await self.finish(self.start(path, authority, method, headers, body), timeout)

    def close(self) -> None:
        self.task.cancel()
        self.writer.close()


def grpc_frame(message: bytes) -> bytes:
    return b"\x00" + len(message).to_bytes(4, "big") + message


# ------------------------------------------------------------------------------------------- raw frames
class RawH2:
    """Bytes in, frames out: for inputs no well-behaved client library would send."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.buf = b""

    @classmethod
    async def connect(cls, port: int, tls: ssl.SSLContext | None = None) -> RawH2:
        reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=tls)
        return cls(reader, writer)

    def send(self, *chunks: bytes) -> None:
        for c in chunks:
            self.writer.write(c)

    async def frames(self, timeout: float = 5.0, until_goaway: bool = True) -> list[Frame]:
        """Frames read until a GOAWAY (or EOF, or ``timeout``)."""
        out: list[Frame] = []
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            while len(self.buf) >= 9:
                frame, length = Frame.parse_frame_header(memoryview(self.buf[:9]))
                if len(self.buf) < 9 + length:
                    break
                frame.parse_body(memoryview(self.buf[9:9 + length]))
                self.buf = self.buf[9 + length:]
                out.append(frame)
                if until_goaway and isinstance(frame, GoAwayFrame):
                    return out
            left = deadline - loop.time()
            if left <= 0:
                return out
            try:
                data = await asyncio.wait_for(self.reader.read(65536), left)
            except (TimeoutError, ConnectionError):
                return out
            if not data:
                return out
            self.buf += data

    async def closed(self, timeout: float = 5.0) -> bool:
        """True when the server closed the connection within ``timeout``."""
        try:
            while True:
                data = await asyncio.wait_for(self.reader.read(65536), timeout)
                if not data:
                    return True
        except TimeoutError:
            return False
        except ConnectionError:
            return True

    def close(self) -> None:
        self.writer.close()


def goaway_of(frames: list[Frame]) -> GoAwayFrame | None:
    return next((f for f in frames if isinstance(f, GoAwayFrame)), None)


class Threaded:
    """Runs ``fn`` in a thread and keeps its result or exception (for blocking grpcio calls)."""

    def __init__(self, fn: Any) -> None:
        self.result: Any = None
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, args=(fn,), daemon=True)
        self.thread.start()

    def _run(self, fn: Any) -> None:
        try:
            self.result = fn()
        except BaseException as err:  # noqa: BLE001 - handed to the test
            self.error = err


class _H2BackendConn(asyncio.Protocol):
    def __init__(self, backend: H2Backend) -> None:
        from h2.config import H2Configuration as Config
        self.backend = backend
        self.conn = H2Connection(Config(client_side=False, header_encoding="utf-8"))

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        self.backend.conns += 1
        self.conn.initiate_connection()
        transport.write(self.conn.data_to_send())

    def data_received(self, data: bytes) -> None:
        from h2.events import PingReceived, RequestReceived
        if self.backend.mute:  # hung: reads and answers nothing, PINGs included
            return
        for ev in self.conn.receive_data(data):
            if isinstance(ev, PingReceived):
                self.backend.pings += 1
            elif isinstance(ev, RequestReceived):
                self.backend.requests.append(dict(ev.headers))
            elif isinstance(ev, StreamEnded):
                sid = ev.stream_id
                b = self.backend
                self.conn.send_headers(sid, [(":status", str(b.status)), *b.headers],
                                       end_stream=not b.body and not b.trailers)
                if b.body:
                    self.conn.send_data(sid, b.body, end_stream=not b.trailers)
                if b.trailers:
                    self.conn.send_headers(sid, b.trailers, end_stream=True)
            elif isinstance(ev, DataReceived):
                self.conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
        self.transport.write(self.conn.data_to_send())


@dataclass
class H2Backend:
    """An h2c server (the h2 library; with ``tls``, https with ALPN h2) answering every request with the
    same headers, body and trailers; ``mute`` makes it hang (nothing read is answered, PINGs included)."""

    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""
    trailers: list[tuple[str, str]] = field(default_factory=list)
    requests: list[dict[str, str]] = field(default_factory=list)
    tls: ssl.SSLContext | None = None
    mute: bool = False
    status: int = 200
    pings: int = 0
    conns: int = 0
    port: int = 0
    server: Any = None

    async def start(self) -> H2Backend:
        self.server = await asyncio.get_running_loop().create_server(lambda: _H2BackendConn(self), "127.0.0.1", 0,
                                                                     ssl=self.tls)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    def close(self) -> None:
        self.server.close()
