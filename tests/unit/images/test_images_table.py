import asyncio
import sys

import pytest

from pyk3s.images import image_name, resolve_image
from pyk3s.images.whoami import serve


@pytest.mark.parametrize("image,name", [
    ("traefik/whoami:v1.10", "traefik/whoami"), ("docker.io/traefik/whoami", "traefik/whoami"),
    ("docker.io/rancher/mirrored-coredns-coredns:1.12.0", "rancher/mirrored-coredns-coredns"),
    ("my.registry:5000/rancher/klipper-lb:v0.4", "rancher/klipper-lb"), ("nginx@sha256:abc", "nginx")])
def test_image_name(image, name):
    assert image_name(image) == name


def test_resolve():
    assert resolve_image("traefik/whoami") == (sys.executable, "-m", "pyk3s", "whoami")
    assert resolve_image("rancher/mirrored-library-traefik:3.3") [-1] == "traefik"
    assert resolve_image("nginx:1.27") is None


async def test_whoami_http_and_udp(unused_tcp_port):
    task = asyncio.create_task(serve(unused_tcp_port, "n1", "127.0.0.1"))
    await asyncio.sleep(0.2)
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", unused_tcp_port)
        writer.write(b"GET /x HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
        body = await reader.read()
        assert b"Name: n1" in body and b"GET /x HTTP/1.1" in body and b"RemoteAddr: 127.0.0.1:" in body
        loop = asyncio.get_running_loop()
        got: asyncio.Future[bytes] = loop.create_future()

        class P(asyncio.DatagramProtocol):
            def datagram_received(self, data, addr):
                got.set_result(data)

        tr, _ = await loop.create_datagram_endpoint(P, remote_addr=("127.0.0.1", unused_tcp_port))
        tr.sendto(b"ping")
        assert await asyncio.wait_for(got, 2) == b"ping"
        tr.close()
    finally:
        task.cancel()
