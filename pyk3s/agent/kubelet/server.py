"""The kubelet HTTPS API on :10250: ``/healthz``, ``/containerLogs/…``, ``/exec/…`` and ``/attach/…``
(WebSocket, ``v5.channel.k8s.io``/``v4.channel.k8s.io``, see :mod:`pyk3s.agent.kubelet.streams`) and
``/portForward/…?port=N`` (WebSocket; binary messages carry the raw bytes both ways,
an empty binary message means "no more data from this side", a text message is a connect error). TLS
with a serving cert; when a CA file is given, client certificates signed by it are required. Exec runs
``nsenter --target <container pid> --mount --net --uts`` with the container's environment; port-forward
connects to localhost:N inside the pod's network namespace, as the real kubelet does.
"""

from __future__ import annotations

import asyncio
import ctypes
import logging
import os
import socket
import ssl
import threading
import time
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from aiohttp import WSMsgType, web

from pyk3s.agent.kubelet.kubelet import Kubelet
from pyk3s.agent.kubelet.logs import LogOptions, follow_log, read_log
from pyk3s.agent.kubelet.streams import StreamOptions, serve_attach, serve_exec
from pyk3s.api.tasks import until_first_ends

__all__ = ["PROTOCOLS", "KubeletServer", "server_ssl_context", "status_response"]

log = logging.getLogger("pyk3s.agent.kubelet")
PROTOCOLS = _PROTOCOLS = ("v5.channel.k8s.io", "v4.channel.k8s.io")


def server_ssl_context(cert: str, key: str, client_ca: str | None) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert, key)
    if client_ca:
        ctx.load_verify_locations(client_ca)
        ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx


def _status(code: int, message: str) -> web.Response:
    body = {"kind": "Status", "apiVersion": "v1", "status": "Failure", "message": message, "code": code,
            "reason": {404: "NotFound", 400: "BadRequest"}.get(code, "InternalError")}
    return web.json_response(body, status=code)


status_response = _status  # for the CRI runtime's exec/attach


def _since(q: Mapping[str, str]) -> float | None:
    if q.get("sinceSeconds"):
        return time.time() - float(q["sinceSeconds"])
    if q.get("sinceTime"):
        return datetime.fromisoformat(q["sinceTime"].replace("Z", "+00:00")).timestamp()
    return None


class KubeletServer:
    def __init__(self, kubelet: Kubelet) -> None:
        self.kubelet = kubelet
        self.app = web.Application()
        self.app.router.add_get("/healthz", self.healthz)
        self.app.router.add_get("/containerLogs/{ns}/{pod}/{container}", self.logs)
        self.app.router.add_route("*", "/exec/{ns}/{pod}/{container}", self.exec)
        self.app.router.add_route("*", "/attach/{ns}/{pod}/{container}", self.attach)
        self.app.router.add_get("/portForward/{ns}/{pod}", self.port_forward)
        self.runner: web.AppRunner | None = None

    async def start(self, host: str, port: int, ssl_context: ssl.SSLContext | None) -> int:
        self.runner = web.AppRunner(self.app, access_log=None)
        await self.runner.setup()
        site = web.TCPSite(self.runner, host, port, ssl_context=ssl_context, reuse_address=True)
        await site.start()
        sock = site._server.sockets[0]  # type: ignore[union-attr]
        return int(sock.getsockname()[1])

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()

    async def healthz(self, _req: web.Request) -> web.Response:
        return web.Response(text="ok")

    def _find(self, req: web.Request):  # noqa: ANN202
        w = self.kubelet.worker_for(req.match_info["ns"], req.match_info["pod"])
        if w is None:
            return None, _status(404, f'pod "{req.match_info["pod"]}" not found on this node')
        name = req.match_info["container"]
        if not any(c.name == name for c in w.init + w.main):
            return None, _status(400, f'container {name} is not valid for pod {req.match_info["pod"]}')
        return w, None

    async def logs(self, req: web.Request) -> web.StreamResponse:
        w, err = self._find(req)
        if err is not None:
            return err
        q = req.query
        name = req.match_info["container"]
        previous = q.get("previous") in ("true", "1")
        proc = w.container_proc(name, previous)
        if proc is None:
            return _status(400, f'previous terminated container "{name}" in pod "{req.match_info["pod"]}" not found')
        opts = LogOptions(tail_lines=int(q["tailLines"]) if q.get("tailLines") else None, since=_since(q),
                          timestamps=q.get("timestamps") in ("true", "1"),
                          limit_bytes=int(q["limitBytes"]) if q.get("limitBytes") else None,
                          follow=q.get("follow") in ("true", "1"))
        if not opts.follow or previous:
            data, _ = read_log(proc.log_path, opts)
            return web.Response(body=data, content_type="text/plain")
        resp = web.StreamResponse(headers={"Content-Type": "text/plain"})
        await resp.prepare(req)

        def running() -> bool:
            cur = w.container_proc(name)
            return cur is not None and cur.restart == proc.restart and proc.exit_status() is None \
                and not w.stopping.is_set()

        try:
            async for chunk in follow_log(proc.log_path, opts, running):
                await resp.write(chunk)
            await resp.write_eof()
        except ConnectionResetError:   # the client (`kubectl logs -f`) went away: nothing more to send
            pass
        return resp

    async def _stream_target(self, req: web.Request,
                             command: list[str] | None) -> tuple[Any, Any, web.StreamResponse | None]:
        """(worker, process, None) for the running container an exec or attach names, else (.., answer):
        an error, or the whole session when the CRI runtime runs the container (its streaming server)."""
        w, err = self._find(req)
        if err is not None:
            return None, None, err
        name = req.match_info["container"]
        proc = w.container_proc(name)
        if hasattr(proc, "serve_stream"):
            return w, proc, await proc.serve_stream(req, command)
        if proc is None or not proc.pid or proc.exit_status() is not None:
            return w, proc, _status(400, f"container {name} is not running")
        return w, proc, None

    async def exec(self, req: web.Request) -> web.StreamResponse:
        command = req.query.getall("command", [])
        _w, proc, answer = await self._stream_target(req, command)
        if answer is not None:
            return answer
        if not command:
            return _status(400, "you must specify at least 1 command")
        ws = web.WebSocketResponse(protocols=_PROTOCOLS)
        await ws.prepare(req)
        env = {}
        try:
            raw = Path(f"/proc/{proc.pid}/environ").read_bytes()  # noqa: ASYNC240 - small local file / adopted pid poll
            env = dict(kv.split("=", 1) for kv in raw.decode(errors="replace").split("\0") if "=" in kv)
        except OSError:
            pass
        # the container's mount, network and UTS (host name) namespaces, its root and its working directory,
        # taken from the process: where a mount point the node lacks was made, the container runs chrooted
        # into a mirror of / and its workingDir may exist only in that view
        argv = ["nsenter", "-t", str(proc.pid), "-m", "-n", "-u", "--root", "--wd", "--", *command]
        await serve_exec(ws, argv, env or None, StreamOptions.from_query(req.query))
        return ws

    async def attach(self, req: web.Request) -> web.StreamResponse:
        w, proc, answer = await self._stream_target(req, None)
        if answer is not None:
            return answer
        name = req.match_info["container"]
        spec: dict[str, Any] = next((c for key in ("containers", "initContainers") for c in (w.pod.get("spec") or {}).get(key) or []
                     if c.get("name") == name), {})
        opts = StreamOptions.from_query(req.query)
        if opts.stdin and not spec.get("stdin"):
            return _status(400, f"container {name} in pod {req.match_info['pod']} does not have stdin: true; "
                                "attach can only stream its output")
        ws = web.WebSocketResponse(protocols=_PROTOCOLS)
        await ws.prepare(req)

        def running() -> bool:
            cur = w.container_proc(name)
            return cur is not None and cur.restart == proc.restart and proc.exit_status() is None \
                and not w.stopping.is_set()

        await serve_attach(ws, proc, StreamOptions(opts.stdin, opts.stdout, opts.stderr, bool(spec.get("tty"))),
                           running, bool(spec.get("stdinOnce")))
        return ws

    async def port_forward(self, req: web.Request) -> web.StreamResponse:
        """One TCP connection to ``localhost:port`` in the pod's network namespace, as a byte WebSocket."""
        w = self.kubelet.worker_for(req.match_info["ns"], req.match_info["pod"])
        if w is None:
            return _status(404, f'pod "{req.match_info["pod"]}" not found on this node')
        try:
            port = int(req.query.get("port", ""))
            if not 0 < port < 65536:
                raise ValueError
        except ValueError:
            return _status(400, f"invalid port {req.query.get('port', '')!r}: want 1-65535")
        host_network = bool((w.pod.get("spec") or {}).get("hostNetwork"))
        ws = web.WebSocketResponse(max_msg_size=0, compress=False)
        await ws.prepare(req)
        try:
            sock = await _dial_localhost(None if host_network else w.netns, port)
            reader, writer = await asyncio.open_connection(sock=sock)
        except OSError as exc:
            await ws.send_str(str(exc))
            await ws.close()
            return ws

        async def pod_to_client() -> None:
            while chunk := await reader.read(65536):
                await ws.send_bytes(chunk)
            await ws.send_bytes(b"")

        async def client_to_pod() -> None:
            async for msg in ws:
                if msg.type != WSMsgType.BINARY:
                    break
                if not msg.data:
                    if writer.can_write_eof():
                        writer.write_eof()
                    continue
                writer.write(msg.data)
                await writer.drain()

        # as the kubelet does, the connection ends when the pod's side ends (or the caller goes away)
        try:
            await until_first_ends(asyncio.create_task(pod_to_client()), asyncio.create_task(client_to_pod()))
        finally:
            writer.close()
            await ws.close()
        return ws


_CLONE_NEWNET = 0x40000000


async def _dial_localhost(netns: str | None, port: int) -> socket.socket:
    """Connect to localhost:port, inside ``netns`` if given. The connect runs in a thread of its own
    that enters the namespace and then ends: a socket stays in the namespace it was made in."""
    loop = asyncio.get_running_loop()
    done: asyncio.Future[socket.socket] = loop.create_future()

    def settle(result: socket.socket | None, error: BaseException | None) -> None:
        if done.cancelled():
            if result is not None:
                result.close()
        elif error is not None:
            done.set_exception(error)
        else:
            done.set_result(result)  # type: ignore[arg-type]

    def run() -> None:
        try:
            sock = _connect_localhost(netns, port)
        except BaseException as exc:  # noqa: BLE001 - handed to the waiting coroutine
            loop.call_soon_threadsafe(settle, None, exc)
        else:
            loop.call_soon_threadsafe(settle, sock, None)

    threading.Thread(target=run, name="pk-portforward-dial", daemon=True).start()
    return await done


def _connect_localhost(netns: str | None, port: int) -> socket.socket:
    if netns is not None:
        try:
            fd = os.open(netns, os.O_RDONLY)
        except OSError as exc:
            raise OSError(exc.errno, f"failed to open network namespace {netns!r}: {exc.strerror}") from None
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            if libc.setns(fd, _CLONE_NEWNET) != 0:
                err = ctypes.get_errno()
                raise OSError(err, f"failed to enter network namespace {netns!r}: {os.strerror(err)}")
        finally:
            os.close(fd)
    errors = []
    for family, addr, host in ((socket.AF_INET, "127.0.0.1", "127.0.0.1"), (socket.AF_INET6, "::1", "[::1]")):
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.settimeout(10)
        try:
            sock.connect((addr, port))
        except OSError as exc:
            sock.close()
            errors.append(f"dial tcp{'4' if family == socket.AF_INET else '6'} {host}:{port}: connect: "
                          f"{(exc.strerror or str(exc)).lower()}")
            continue
        sock.setblocking(False)
        return sock
    where = f' inside namespace "{netns}"' if netns else ""
    raise OSError(f"failed to connect to localhost:{port}{where}, IPv4: {errors[0]} IPv6 {errors[1]}")
