"""The kernel relay on its own, between real loopback TCP connections: every byte from either peer goes
through splice (never into Python), FINs passed on, a PROXY header first, keep-alive set on sockets that
live on, pipes back to the pool."""

from __future__ import annotations

import asyncio
import gc
import os
import socket
from collections.abc import Callable
from typing import Any

import pytest

from pyk3s.addons.ingress.proxy import tcp_relay
from pyk3s.addons.ingress.proxy.poller import SETTLE, poller_for
from pyk3s.addons.ingress.proxy.tcp_dial import set_keep_alive
from pyk3s.addons.ingress.proxy.tcp_relay import SpliceRelay

TIMING = pytest.mark.timing_sensitive


def _pair() -> tuple[socket.socket, socket.socket]:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        a = socket.create_connection(listener.getsockname())
        b, _ = listener.accept()
    a.setblocking(False)
    b.setblocking(False)
    return a, b


class Wired:
    """client <-> (relay) <-> server: the relay holds the middle two sockets."""

    def __init__(self, header: bytes = b"", delay: float = 0.1,
                 wrap: Callable[[socket.socket], socket.socket] = lambda s: s) -> None:
        self.client, relay_client = _pair()
        relay_server, self.server = _pair()
        self.relay_client, self.relay_server = wrap(relay_client), wrap(relay_server)
        self.ended: asyncio.Future[OSError | None] = asyncio.get_running_loop().create_future()
        self.relay = SpliceRelay(asyncio.get_running_loop(), self.relay_client, self.relay_server, delay,
                                 self._closed, header)

    def _closed(self, relay: SpliceRelay, err: OSError | None) -> None:
        if not self.ended.done():
            self.ended.set_result(err)

    def close(self) -> None:
        self.client.close()
        self.server.close()
        if self.relay is not None:
            self.relay.close()


async def _send_all(sock: socket.socket, data: bytes) -> None:
    await asyncio.get_running_loop().sock_sendall(sock, data)


async def _recv_exactly(sock: socket.socket, n: int) -> bytes:
    loop = asyncio.get_running_loop()
    out = bytearray()
    while len(out) < n:
        chunk = await asyncio.wait_for(loop.sock_recv(sock, n - len(out)), 10)
        assert chunk, f"EOF after {len(out)} of {n} bytes"
        out += chunk
    return bytes(out)


async def _recv_eof(sock: socket.socket) -> bytes:
    loop = asyncio.get_running_loop()
    out = bytearray()
    while chunk := await asyncio.wait_for(loop.sock_recv(sock, 65536), 10):
        out += chunk
    return bytes(out)


class NoPython(socket.socket):
    """A socket whose bytes may not be read or written from Python."""

    def _refuse(self, *args: Any, **kwargs: Any) -> Any:
        raise AssertionError("bytes went through Python")

    recv = recv_into = recvfrom = recvmsg = send = sendall = sendto = sendmsg = _refuse


def _no_python(sock: socket.socket) -> socket.socket:
    return NoPython(sock.family, sock.type, sock.proto, sock.detach())


class Splices:
    """os.splice as the relay calls it, recorded: (source fd, bytes moved)."""

    def __init__(self, monkeypatch: Any) -> None:
        self.calls: list[tuple[int, int]] = []
        real = os.splice

        def splice(src: int, dst: int, count: int, *args: Any, **kwargs: Any) -> int:
            n = real(src, dst, count, *args, **kwargs)
            self.calls.append((src, n))
            return n

        def read(fd: int, n: int) -> bytes:
            raise AssertionError("bytes read into Python")

        monkeypatch.setattr(tcp_relay.os, "splice", splice)
        monkeypatch.setattr(tcp_relay.os, "read", read)

    def moved_from(self, fd: int) -> int:
        return sum(n for src, n in self.calls if src == fd)


async def test_client_bytes_only_ever_go_through_splice(monkeypatch: Any) -> None:
    splices = Splices(monkeypatch)
    w = Wired(delay=5.0, wrap=_no_python)
    cfd, bfd = w.relay.cfd, w.relay.bfd
    up, down = b"GET / HTTP/1.0\r\n\r\n", os.urandom(300_000)
    await _send_all(w.client, up)
    assert await _recv_exactly(w.server, len(up)) == up
    got, _ = await asyncio.gather(_recv_exactly(w.client, len(down)), _send_all(w.server, down))
    assert got == down
    w.server.shutdown(socket.SHUT_WR)
    w.client.shutdown(socket.SHUT_WR)
    assert await _recv_eof(w.client) == b""
    assert await _recv_eof(w.server) == b""
    assert await asyncio.wait_for(w.ended, 5) is None
    assert splices.moved_from(cfd) == len(up) and splices.moved_from(bfd) == len(down)
    assert (w.relay.bytes_up, w.relay.bytes_down) == (len(up), len(down))
    w.close()


@TIMING
async def test_a_fin_that_comes_with_the_data_takes_no_splice_of_its_own(monkeypatch: Any) -> None:
    splices = Splices(monkeypatch)
    w = Wired()
    bfd = w.relay.bfd
    await _send_all(w.client, b"GET / HTTP/1.0\r\n\r\n")
    assert await _recv_exactly(w.server, 18) == b"GET / HTTP/1.0\r\n\r\n"
    w.server.send(b"HTTP/1.0 200 OK\r\n\r\nok")
    w.server.shutdown(socket.SHUT_WR)  # both there before the relay wakes
    assert await _recv_eof(w.client) == b"HTTP/1.0 200 OK\r\n\r\nok"
    assert [n for src, n in splices.calls if src == bfd] == [21]
    w.client.shutdown(socket.SHUT_WR)
    assert await _recv_eof(w.server) == b""
    assert await asyncio.wait_for(w.ended, 5) is None
    assert (w.relay.bytes_up, w.relay.bytes_down) == (18, 21)
    w.close()


async def test_streams_arrive_whole_and_fins_pass_both_ways() -> None:
    w = Wired(delay=5.0)
    up = os.urandom(3 * 1024 * 1024 + 123)
    down = os.urandom(200_000 + 7)
    got_up, got_down, _, _ = await asyncio.gather(
        _recv_exactly(w.server, len(up)), _recv_exactly(w.client, len(down)),
        _send_all(w.client, up), _send_all(w.server, down))
    assert got_up == up and got_down == down
    w.client.shutdown(socket.SHUT_WR)
    assert await _recv_eof(w.server) == b""
    w.server.shutdown(socket.SHUT_WR)
    assert await _recv_eof(w.client) == b""
    assert await asyncio.wait_for(w.ended, 5) is None
    assert (w.relay.bytes_up, w.relay.bytes_down) == (len(up), len(down))
    w.close()


async def test_backlog_at_the_destination_waits_for_room() -> None:
    w = Wired(delay=5.0)
    w.server.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
    data = os.urandom(3 * 1024 * 1024)
    sender = asyncio.ensure_future(_send_all(w.client, data))
    await asyncio.sleep(0.2)  # the server reads nothing yet: the relay must hold back, not lose bytes
    assert not w.ended.done()
    assert await _recv_exactly(w.server, len(data)) == data
    await sender
    w.close()


async def test_proxy_header_goes_first() -> None:
    w = Wired(header=b"PROXY TCP4 10.0.0.1 10.0.0.2 1234 80\r\n")
    await _send_all(w.client, b"hello")
    assert await _recv_exactly(w.server, 43) == b"PROXY TCP4 10.0.0.1 10.0.0.2 1234 80\r\nhello"
    w.close()


async def test_reset_by_the_server_closes_both() -> None:
    w = Wired()
    w.server.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    w.server.close()  # RST
    await asyncio.wait_for(w.ended, 5)
    assert await _recv_eof(w.client) == b""
    w.client.close()


@TIMING
async def test_keep_alive_is_set_on_sockets_that_live_on() -> None:
    poller = poller_for(asyncio.get_running_loop())
    live, peer1 = _pair()
    gone, peer2 = _pair()
    poller.after_a_while(set_keep_alive, live, 7)
    poller.after_a_while(set_keep_alive, gone, 7)
    gone.close()
    assert live.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE) == 0
    await asyncio.sleep(SETTLE * 0.9)
    assert live.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE) == 0  # not for a connection this young
    await asyncio.sleep(SETTLE * 1.1 + 0.3)
    assert live.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE) == 1
    assert live.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE) == 7
    assert live.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL) == 7
    for s in (live, peer1, peer2):
        s.close()


def test_pipes_come_back_to_the_pool() -> None:
    pool = tcp_relay.PipePool()
    pipe = pool.get()
    assert pool.slots >= 1
    pool.put(pipe, True)
    assert pool.get() == pipe
    pool.put(pipe, False)  # bytes left in it: closed, not reused
    assert pool.idle == []


async def test_a_finished_relay_is_freed_without_the_cyclic_gc() -> None:
    gc.collect()
    gc.disable()
    try:
        w = Wired()
        await _send_all(w.client, b"ping")
        assert await _recv_exactly(w.server, 4) == b"ping"
        w.server.shutdown(socket.SHUT_WR)
        w.client.shutdown(socket.SHUT_WR)
        assert await _recv_eof(w.client) == b""
        await asyncio.wait_for(w.ended, 5)
        w.relay = None  # type: ignore[assignment]
        assert not [o for o in gc.get_objects() if type(o).__name__ in ("SpliceRelay", "_Direction")]
        w.client.close()
        w.server.close()
    finally:
        gc.enable()
