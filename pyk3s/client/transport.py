"""How requests reach the API: over HTTPS, or straight into an in-process ``ApiServer``.

A transport has two calls: ``request`` (one answer, read whole) and ``stream`` (an answer read
line by line, for watches and followed logs). The client above never knows which one it has.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import urlencode

import aiohttp

from .errors import TransportError
from .kubeconfig import ClusterAccess

if TYPE_CHECKING:
    from pyk3s.api.request import UserInfo

__all__ = ["HttpTransport", "InProcessTransport", "Query", "Transport"]

Query = list[tuple[str, str]]


class Transport(Protocol):
    async def request(
        self, method: str, path: str, query: Query, body: bytes | None, headers: dict[str, str]
    ) -> tuple[int, dict[str, str], bytes]: ...

    def stream(self, method: str, path: str, query: Query, headers: dict[str, str]) -> AsyncIterator[bytes]:
        """Yields the answer's non-blank lines; a status of 300 or more raises :class:`StreamRejected` first."""
        ...

    async def close(self) -> None: ...


class StreamRejected(Exception):
    def __init__(self, status: int, body: bytes) -> None:
        super().__init__(status)
        self.status = status
        self.body = body


class _LineSplitter:
    """Cuts a byte stream into its non-blank lines; a watch sends one JSON event per line."""

    __slots__ = ("_rest",)

    def __init__(self) -> None:
        self._rest = b""

    def feed(self, chunk: bytes) -> list[bytes]:
        *lines, self._rest = (self._rest + chunk).split(b"\n")
        return [line for line in lines if line.strip()]

    def tail(self) -> list[bytes]:
        """The last line when the stream ends without a newline."""
        return [self._rest] if self._rest.strip() else []


class HttpTransport:
    def __init__(self, access: ClusterAccess, *, timeout: float = 30.0) -> None:
        self.access = access
        self._ssl = access.ssl_context()
        self._timeout = timeout
        self._session: aiohttp.ClientSession | None = None

    def _sess(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(ssl=self._ssl if self._ssl is not None else False, limit=64)
            self._session = aiohttp.ClientSession(connector=connector)
        return self._session

    def _headers(self, headers: dict[str, str]) -> dict[str, str]:
        out = {"User-Agent": "pyk3s-client/0.1", **headers}
        token = self.access.bearer()
        if token:
            out["Authorization"] = f"Bearer {token}"
        return out

    def _url(self, path: str, query: Query) -> str:
        return self.access.server + path + (("?" + urlencode(query)) if query else "")

    async def request(
        self, method: str, path: str, query: Query, body: bytes | None, headers: dict[str, str]
    ) -> tuple[int, dict[str, str], bytes]:
        try:
            async with self._sess().request(
                method,
                self._url(path, query),
                data=body,
                headers=self._headers(headers),
                timeout=aiohttp.ClientTimeout(total=self._timeout),
            ) as resp:
                data = await resp.read()
                return resp.status, {k.lower(): v for k, v in resp.headers.items()}, data
        except (TimeoutError, aiohttp.ClientError, OSError) as err:
            raise TransportError(f"{method} {self.access.server}{path}: {err}") from err

    async def stream(self, method: str, path: str, query: Query, headers: dict[str, str]) -> AsyncIterator[bytes]:
        try:
            async with self._sess().request(
                method,
                self._url(path, query),
                headers=self._headers(headers),
                timeout=aiohttp.ClientTimeout(total=None, sock_connect=self._timeout),
            ) as resp:
                if resp.status >= 300:
                    raise StreamRejected(resp.status, await resp.read())
                lines = _LineSplitter()
                async for chunk in resp.content.iter_any():
                    for line in lines.feed(chunk):
                        yield line
                for line in lines.tail():
                    yield line
        except (aiohttp.ClientError, OSError) as err:
            raise TransportError(f"{method} {self.access.server}{path}: {err}") from err

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()


class InProcessTransport:
    """Calls ``ApiServer.handle`` directly: the real API code, no sockets."""

    def __init__(self, api: Any, user: UserInfo | None = None) -> None:
        from pyk3s.api.request import UserInfo

        self.api = api
        self.user = user or UserInfo("system:admin", ("system:masters", "system:authenticated"))

    def _req(self, method: str, path: str, query: Query, body: bytes | None, headers: dict[str, str]) -> Any:
        from pyk3s.api.request import ApiRequest

        return ApiRequest(
            method=method,
            path=path,
            query=list(query),
            headers={k.lower(): v for k, v in headers.items()},
            body=body or b"",
            user=self.user,
        )

    async def request(
        self, method: str, path: str, query: Query, body: bytes | None, headers: dict[str, str]
    ) -> tuple[int, dict[str, str], bytes]:
        resp = await self.api.handle(self._req(method, path, query, body, headers))
        if resp.stream is not None:
            chunks = [c async for c in resp.stream]
            return resp.status, dict(resp.headers), b"".join(chunks)
        return resp.status, {"content-type": resp.content_type, **resp.headers}, resp.body

    async def stream(self, method: str, path: str, query: Query, headers: dict[str, str]) -> AsyncIterator[bytes]:
        resp = await self.api.handle(self._req(method, path, query, None, headers))
        if resp.status >= 300:
            raise StreamRejected(resp.status, resp.body)
        if resp.stream is None:
            for line in resp.body.splitlines():
                if line.strip():
                    yield line
            return
        lines = _LineSplitter()
        async for chunk in resp.stream:
            for line in lines.feed(chunk):
                yield line
        for line in lines.tail():
            yield line

    async def close(self) -> None:
        return None
