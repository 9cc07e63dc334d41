"""The joining agent's load balancer to the API servers (K3s's way): a local TCP proxy that sends each
connection to the server in use, moving to the next one it knows when that server stops answering."""

from __future__ import annotations

import asyncio
import contextlib
import logging

__all__ = ["ServerLoadBalancer"]

log = logging.getLogger("pyk3s.agent.join")
HEALTH_SECONDS = 2.0
CONNECT_TIMEOUT = 2.0


class ServerLoadBalancer:
    """A local TCP proxy to the API servers: every connection goes to the server in use; when that one
    refuses or stops answering its health check, the next known server takes over and the connections
    to the dead one are closed so their clients reconnect (watches resume through the new server)."""

    def __init__(self, servers: list[tuple[str, int]], host: str = "127.0.0.1", port: int = 6444) -> None:
        self.configured = list(servers)
        self.servers = list(servers)
        self.active = servers[0]
        self.host, self.port = host, port
        self._server: asyncio.AbstractServer | None = None
        self._conns: dict[tuple[str, int], set[asyncio.StreamWriter]] = {}

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"https://{host}:{self.port}"

    def set_learned(self, learned: list[tuple[str, int]]) -> None:
        merged = list(dict.fromkeys([*self.configured, *learned]))
        if merged != self.servers:
            log.info("agent lb: servers %s", ", ".join(f"{h}:{p}" for h, p in merged))
            self.servers = merged

    def _candidates(self) -> list[tuple[str, int]]:
        return [self.active, *(s for s in self.servers if s != self.active)]

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, self.host, self.port, reuse_address=True)
        self.port = self._server.sockets[0].getsockname()[1]
        log.info("agent lb: listening on %s:%d, using %s:%d", self.host, self.port, *self.active)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        for conns in self._conns.values():
            for w in list(conns):
                w.close()

    async def _connect(self) -> tuple[tuple[str, int], asyncio.StreamReader, asyncio.StreamWriter] | None:
        for target in self._candidates():
            try:
                r, w = await asyncio.wait_for(asyncio.open_connection(*target), CONNECT_TIMEOUT)
            except (OSError, TimeoutError):
                continue
            if target != self.active:
                log.warning("agent lb: server %s:%d unreachable; now using %s:%d", *self.active, *target)
                self.active = target
            return target, r, w
        return None

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        got = await self._connect()
        if got is None:
            writer.close()
            return
        target, up_r, up_w = got
        conns = self._conns.setdefault(target, set())
        conns.update((writer, up_w))

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            try:
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            except (OSError, asyncio.IncompleteReadError):
                pass
            finally:
                with contextlib.suppress(OSError, RuntimeError):
                    dst.close()

        try:
            await asyncio.gather(pipe(reader, up_w), pipe(up_r, writer))
        finally:
            conns.discard(writer)
            conns.discard(up_w)

    async def health(self) -> None:
        """Drop connections to the server in use once it stops accepting connections."""
        while True:
            await asyncio.sleep(HEALTH_SECONDS)
            target = self.active
            try:
                _, w = await asyncio.wait_for(asyncio.open_connection(*target), CONNECT_TIMEOUT)
                w.close()
                continue
            except (OSError, TimeoutError):
                pass
            if await self._connect() is None:
                continue
            for w in list(self._conns.pop(target, ())):
                w.close()
