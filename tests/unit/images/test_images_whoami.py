"""pyk3s whoami on loopback: echo body, and /health flipped by POST like traefik/whoami."""

import asyncio
import socket

from pyk3s.images.whoami import serve


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def _request(port: int, method: str, path: str, body: bytes = b"") -> tuple[int, bytes]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"{method} {path} HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n"
                 .encode() + body)
    data = await reader.read()
    writer.close()
    head, _, rest = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), rest


async def test_health_is_set_by_post_and_echo_still_answers(capsys):
    port = _free_port()
    task = asyncio.create_task(serve(port, host="127.0.0.1"))
    try:
        for _ in range(100):
            try:
                status, _ = await _request(port, "GET", "/health")
                break
            except OSError:
                await asyncio.sleep(0.02)
        assert status == 200
        assert (await _request(port, "POST", "/health", b"503"))[0] == 503
        assert (await _request(port, "GET", "/health"))[0] == 503
        status, body = await _request(port, "GET", "/hello")
        assert status == 200 and b"GET /hello HTTP/1.1" in body and b"RemoteAddr: 127.0.0.1:" in body
        assert (await _request(port, "POST", "/health", b"nope"))[0] == 400
        assert (await _request(port, "POST", "/health", b"200"))[0] == 200
        assert (await _request(port, "GET", "/health"))[0] == 200
        assert f"Starting up on port {port}" in capsys.readouterr().out
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
