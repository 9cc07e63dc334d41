"""The joining agent's pieces without root: --server parsing, the CA/token check, the local load
balancer's failover (real TCP on loopback)."""

from __future__ import annotations

import asyncio
import hashlib

import pytest

from pyk3s.agent.join import JoinError, parse_servers
from pyk3s.agent.loadbalancer import ServerLoadBalancer
from pyk3s.k3s.token import parse_token


def test_parse_servers_lists_and_defaults() -> None:
    assert parse_servers("https://10.0.0.1:6443, https://b.example:7443") == [("10.0.0.1", 6443), ("b.example", 7443)]
    assert parse_servers("10.0.0.2") == [("10.0.0.2", 6443)]
    assert parse_servers("https://[fd00:1::1]:6443") == [("fd00:1::1", 6443)]
    with pytest.raises(JoinError, match="--server"):
        parse_servers("http://10.0.0.1:6443")
    with pytest.raises(JoinError, match="--server is required"):
        parse_servers(" , ")


def test_token_hash_guards_the_ca() -> None:
    ca = b"-----BEGIN CERTIFICATE-----\nabc\n-----END CERTIFICATE-----\n"
    good = parse_token(f"K10{hashlib.sha256(ca).hexdigest()}::server:pw")
    assert good.ca_matches(ca) and not good.ca_matches(ca + b"x")
    assert parse_token("just-a-password").ca_matches(b"anything")  # short tokens skip the check


async def _echo_server(tag: bytes) -> asyncio.Server:
    async def handle(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        while data := await r.read(100):
            w.write(tag + data)
            await w.drain()
        w.close()
    return await asyncio.start_server(handle, "127.0.0.1", 0)


async def _roundtrip(port: int) -> bytes:
    r, w = await asyncio.open_connection("127.0.0.1", port)
    w.write(b"ping")
    await w.drain()
    data = await asyncio.wait_for(r.read(100), 2)
    w.close()
    return data


async def test_load_balancer_fails_over_and_drops_connections_to_a_dead_server(monkeypatch) -> None:
    import pyk3s.agent.loadbalancer as loadbalancer

    monkeypatch.setattr(loadbalancer, "HEALTH_SECONDS", 0.1)
    a, b = await _echo_server(b"a:"), await _echo_server(b"b:")
    pa, pb = a.sockets[0].getsockname()[1], b.sockets[0].getsockname()[1]
    lb = ServerLoadBalancer([("127.0.0.1", pa)], port=0)
    lb.set_learned([("127.0.0.1", pb)])  # learned from the kubernetes Endpoints
    await lb.start()
    health = asyncio.create_task(lb.health())
    try:
        assert await _roundtrip(lb.port) == b"a:ping"
        r, w = await asyncio.open_connection("127.0.0.1", lb.port)  # a long-lived (watch-like) connection
        w.write(b"x")
        assert await r.read(100) == b"a:x"
        a.close()
        await a.wait_closed()
        # the health check notices, switches, and closes the connection still piped to a
        assert await asyncio.wait_for(r.read(100), 3) == b""
        assert lb.active == ("127.0.0.1", pb)
        assert await _roundtrip(lb.port) == b"b:ping"
    finally:
        health.cancel()
        await lb.stop()
        b.close()


def _ipv6_loopback() -> bool:
    import socket

    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


@pytest.mark.skipif(not _ipv6_loopback(), reason="needs an IPv6 loopback address")
async def test_load_balancer_of_an_ipv6_only_node_listens_on_ipv6_loopback() -> None:
    server = await asyncio.start_server(lambda r, w: w.close(), "::1", 0)
    lb = ServerLoadBalancer([("::1", server.sockets[0].getsockname()[1])], host="::1", port=0)
    await lb.start()
    try:
        assert lb.url == f"https://[::1]:{lb.port}"
        _, w = await asyncio.open_connection("::1", lb.port)
        w.close()
    finally:
        await lb.stop()
        server.close()
