"""Exec and attach sessions of the kubelet (`pyk3s.agent.kubelet.streams`) over a loopback WebSocket,
with real processes (no namespaces: the command runs directly instead of through nsenter)."""

from __future__ import annotations

import asyncio
import json
import os
import secrets
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from pyk3s.agent.kubelet.runtime import ContainerProcess
from pyk3s.agent.kubelet.streams import StreamOptions, serve_attach, serve_exec, session_members

V5 = "v5.channel.k8s.io"


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


async def _server(handler: Handler) -> tuple[web.AppRunner, str]:
    app = web.Application()
    app.router.add_get("/s", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    return runner, f"http://127.0.0.1:{port}/s"


def _exec_handler(argv: list[str], opts: StreamOptions) -> Handler:
    async def handler(req: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(protocols=(V5, "v4.channel.k8s.io"))
        await ws.prepare(req)
        await serve_exec(ws, argv, None, opts)
        return ws
    return handler


async def _collect(ws: aiohttp.ClientWebSocketResponse, timeout: float = 10) -> tuple[dict[int, bytes], dict]:
    out: dict[int, bytes] = {1: b"", 2: b""}
    status: dict = {}
    async with asyncio.timeout(timeout):
        async for msg in ws:
            if msg.type != aiohttp.WSMsgType.BINARY:
                break
            if msg.data[0] == 3:
                status = json.loads(msg.data[1:])
            else:
                out[msg.data[0]] = out.get(msg.data[0], b"") + msg.data[1:]
    return out, status


def _procs_with(marker: str) -> list[int]:
    found = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                if marker.encode() in (d / "cmdline").read_bytes().split(b"\0"):
                    found.append(int(d.name))
            except OSError:
                continue
    return found


async def test_exec_tty_gives_a_terminal_and_exit_code():
    argv = ["sh", "-c", "read x; test -t 0 && test -t 1 && echo tty-$x; stty size; exit 3"]
    runner, url = await _server(_exec_handler(argv, StreamOptions(True, True, False, True)))
    try:
        async with aiohttp.ClientSession() as s, s.ws_connect(url, protocols=(V5,)) as ws:
            await ws.send_bytes(b"\x04" + json.dumps({"Width": 101, "Height": 31}).encode())
            await ws.send_bytes(b"\x00yes\n")
            out, status = await _collect(ws)
    finally:
        await runner.cleanup()
    text = out[1].decode().replace("\r", "")
    assert "tty-yes\n" in text and "31 101\n" in text, text
    assert out[2] == b""  # with a tty everything is stdout
    assert status["reason"] == "NonZeroExitCode"
    assert status["details"]["causes"] == [{"reason": "ExitCode", "message": "3"}]


async def test_exec_plain_streams_and_stdin_close():
    argv = ["sh", "-c", "cat; echo err >&2"]
    runner, url = await _server(_exec_handler(argv, StreamOptions(True, True, True, False)))
    try:
        async with aiohttp.ClientSession() as s, s.ws_connect(url, protocols=(V5,)) as ws:
            await ws.send_bytes(b"\x00hello\n")
            await ws.send_bytes(b"\xff\x00")  # v5: the client closed stdin
            out, status = await _collect(ws)
    finally:
        await runner.cleanup()
    assert (out[1], out[2], status) == (b"hello\n", b"err\n", {"metadata": {}, "status": "Success"})


@pytest.mark.parametrize("tty", [True, False], ids=["tty", "plain"])
async def test_exec_client_gone_ends_the_whole_session(tty):
    marker = str(900000 + secrets.randbelow(99999))
    argv = ["sh", "-c", f"sleep {marker}1 & sleep {marker}2; echo never"]
    runner, url = await _server(_exec_handler(argv, StreamOptions(True, True, not tty, tty)))
    try:
        async with aiohttp.ClientSession() as s, s.ws_connect(url, protocols=(V5,)):
            for _ in range(100):
                if _procs_with(f"{marker}1") and _procs_with(f"{marker}2"):
                    break
                await asyncio.sleep(0.05)
            pids = _procs_with(f"{marker}1") + _procs_with(f"{marker}2")
            assert len(pids) == 2
        for _ in range(100):
            if not _procs_with(f"{marker}1") and not _procs_with(f"{marker}2"):
                break
            await asyncio.sleep(0.05)
        assert not _procs_with(f"{marker}1") and not _procs_with(f"{marker}2")
    finally:
        await runner.cleanup()
        for pid in _procs_with(f"{marker}1") + _procs_with(f"{marker}2"):
            os.kill(pid, 9)


async def test_exec_of_a_missing_command_reports_on_the_status_channel():
    runner, url = await _server(_exec_handler(["/nonexistent/pk-cmd"], StreamOptions(False, True, True, False)))
    try:
        async with aiohttp.ClientSession() as s, s.ws_connect(url, protocols=(V5,)) as ws:
            _out, status = await _collect(ws)
    finally:
        await runner.cleanup()
    assert status["status"] == "Failure" and "pk-cmd" in status["message"]


def test_session_members_lists_only_that_session():
    assert os.getpid() in session_members(os.getsid(0))
    assert session_members(2**22 + 12345) == []


async def test_attach_feeds_stdin_streams_new_output_and_closes_stdin_once(tmp_path: Path):
    proc = ContainerProcess(tmp_path / "c", 0)
    proc.dir.mkdir()
    proc.log_path.write_bytes(b"2024-01-01T00:00:00.000000000Z stdout F before attach\n")
    reader, proc.stdin_fd = os.pipe()
    os.set_blocking(proc.stdin_fd, False)
    running = [True]

    async def handler(req: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(protocols=(V5,))
        await ws.prepare(req)
        await serve_attach(ws, proc, StreamOptions(True, True, True, False), lambda: running[0], stdin_once=True)
        return ws

    runner, url = await _server(handler)
    try:
        async with aiohttp.ClientSession() as s, s.ws_connect(url, protocols=(V5,)) as ws:
            await ws.send_bytes(b"\x00line-in\n")
            got = b""
            while not got.endswith(b"\n"):
                got += await asyncio.get_running_loop().run_in_executor(None, os.read, reader, 100)
            assert got == b"line-in\n"
            with proc.log_path.open("ab") as fh:
                fh.write(b"2024-01-01T00:00:01.000000000Z stdout P par\n"
                         b"2024-01-01T00:00:01.000000000Z stdout F tial\n"
                         b"2024-01-01T00:00:01.000000000Z stderr F oops\n")
            await asyncio.sleep(0.3)
            running[0] = False
            out, status = await _collect(ws)
        assert (out[1], out[2], status["status"]) == (b"partial\n", b"oops\n", "Success")
        assert proc.stdin_fd is None  # stdinOnce: the container reads end-of-file
        assert os.read(reader, 10) == b""
    finally:
        await runner.cleanup()
        os.close(reader)
        proc.close_stdin()
