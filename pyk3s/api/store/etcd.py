"""etcd v3 engine (``http(s)://host:port[,…]``) through etcd's JSON gRPC gateway.

Mapping: revisions are etcd's own. create = Txn(create_revision(key) == 0, put); update and delete =
Txn(mod_revision(key) == expected — or version(key) > 0 when unconditional, put/delete with prev_kv,
else range(key)) so one round trip both writes and explains a failure (no key: KeyNotFound, other
revision: RevisionConflict). Watch is ``POST /v3/watch`` (newline-delimited JSON results) from
``after_revision + 1`` with ``prev_kv``; a broken stream is resumed from the last delivered revision,
on the next endpoint if needed. Keys and values travel base64-encoded.

Endpoints: requests go to the last endpoint that worked; a failure to connect moves on to the next one.
A request that may have reached the server is not replayed elsewhere (it could apply twice): it fails
with ``Unavailable``. TLS: ``ca_file`` verifies the servers, ``cert_file``/``key_file`` authenticate us.

Compaction point: etcd does not report it directly; :meth:`compact_revision` finds the lowest revision
a read still accepts (binary search, cached for a few seconds and raised by what this process learns).
``lease`` is not sent to etcd (etcd needs granted lease ids); keys written here report lease 0.
"""

from __future__ import annotations

import asyncio
import base64
import json
import ssl
import time
from collections.abc import AsyncIterator, Sequence
from typing import Any

import aiohttp

from .base import (
    Compacted,
    Event,
    EventBatch,
    FutureRevision,
    KeyExists,
    KeyNotFound,
    KeyValue,
    RevisionConflict,
    StoreError,
    Unavailable,
)
from .watchhub import prefix_end

__all__ = ["EtcdStore"]

_COMPACTED = "required revision has been compacted"
_FUTURE = "required revision is a future revision"
_PROBE_KEY = "\x00pyk3s-probe"
_COMPACT_CACHE_SECONDS = 5.0


def _b64(text: str | bytes) -> str:
    raw = text.encode() if isinstance(text, str) else text
    return base64.b64encode(raw).decode("ascii")


def _kv(data: dict[str, Any]) -> KeyValue:
    return KeyValue(
        base64.b64decode(data["key"]).decode(),
        base64.b64decode(data.get("value", "")),
        int(data.get("create_revision", 0)),
        int(data.get("mod_revision", 0)),
        0,
    )


def _event(data: dict[str, Any]) -> Event:
    kv = data["kv"]
    prev = _kv(data["prev_kv"]) if "prev_kv" in data else None
    if data.get("type") == "DELETE":
        if prev is None:
            return Event(
                "DELETE", KeyValue(base64.b64decode(kv["key"]).decode(), b"", 0, int(kv["mod_revision"]))
            )
        return Event(
            "DELETE", KeyValue(prev.key, prev.value, prev.create_revision, int(kv["mod_revision"])), prev
        )
    return Event("PUT", _kv(kv), prev)


class _EtcdError(StoreError):
    pass


class EtcdStore:
    def __init__(
        self,
        endpoints: Sequence[str],
        *,
        ca_file: str | None = None,
        cert_file: str | None = None,
        key_file: str | None = None,
        compact_min_retain: int = 1000,
        timeout: float = 10.0,
        connect_timeout: float = 3.0,
    ) -> None:
        if not endpoints:
            raise ValueError("store etcd: no endpoints")
        self.endpoints = [e.rstrip("/") for e in endpoints]
        self.compact_min_retain = compact_min_retain
        self.timeout = timeout
        self.connect_timeout = connect_timeout
        self._ssl: ssl.SSLContext | None = None
        if ca_file or cert_file:
            self._ssl = ssl.create_default_context(cafile=ca_file)
            if cert_file:
                self._ssl.load_cert_chain(cert_file, key_file)
        self._session: aiohttp.ClientSession | None = None
        self._current = 0
        self._compacted = 0
        self._compacted_checked = 0.0

    async def start(self) -> None:
        connector = aiohttp.TCPConnector(ssl=self._ssl if self._ssl is not None else True, limit=64)
        self._session = aiohttp.ClientSession(connector=connector, json_serialize=json.dumps)
        await self.current_revision()

    async def close(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            await session.close()

    # -- transport ---------------------------------------------------------------------------

    def _where(self) -> str:
        return ",".join(self.endpoints)

    async def _open(
        self, path: str, body: dict[str, Any], timeout: aiohttp.ClientTimeout
    ) -> aiohttp.ClientResponse:
        """POST to the current endpoint, moving on while endpoints refuse connections."""
        if self._session is None:
            raise Unavailable(f"store etcd {self._where()}: not started")
        last: BaseException | None = None
        n = len(self.endpoints)
        for attempt in range(n):
            index = (self._current + attempt) % n
            try:
                resp = await self._session.post(self.endpoints[index] + path, json=body, timeout=timeout)
            except (TimeoutError, aiohttp.ClientConnectorError) as e:
                last = e
                continue
            except aiohttp.ClientError as e:
                raise Unavailable(f"store etcd {self.endpoints[index]}{path}: {e}") from e
            self._current = index
            return resp
        raise Unavailable(f"store etcd {self._where()}: no endpoint reachable: {last}")

    async def _call(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        timeout = aiohttp.ClientTimeout(total=self.timeout, sock_connect=self.connect_timeout)
        resp = await self._open(path, body, timeout)
        try:
            async with resp:
                data = await resp.json(content_type=None)
        except (TimeoutError, aiohttp.ClientError, ValueError) as e:
            raise Unavailable(f"store etcd {self.endpoints[self._current]}{path}: {e}") from e
        if "error" in data or resp.status != 200:
            message = str(data.get("message") or data.get("error") or f"HTTP {resp.status}")
            raise _EtcdError(message)
        return data

    async def _read(self, body: dict[str, Any]) -> dict[str, Any]:
        try:
            return await self._call("/v3/kv/range", body)
        except _EtcdError as e:
            revision = int(body.get("revision", 0))
            if _COMPACTED in str(e):
                raise Compacted(revision, await self.compact_revision(force=True)) from None
            if _FUTURE in str(e):
                raise FutureRevision(revision, await self.current_revision()) from None
            raise StoreError(f"store etcd range: {e}") from None

    # -- reads -------------------------------------------------------------------------------

    async def current_revision(self) -> int:
        data = await self._read({"key": _b64(_PROBE_KEY), "count_only": True})
        return int(data["header"]["revision"])

    async def compact_revision(self, *, force: bool = False) -> int:
        if not force and time.monotonic() - self._compacted_checked < _COMPACT_CACHE_SECONDS:
            return self._compacted
        lo, hi = 1, await self.current_revision()
        lo = max(lo, self._compacted)
        while lo < hi:
            mid = (lo + hi) // 2
            try:
                await self._call(
                    "/v3/kv/range", {"key": _b64(_PROBE_KEY), "count_only": True, "revision": mid}
                )
                hi = mid
            except _EtcdError as e:
                if _COMPACTED not in str(e):
                    raise StoreError(f"store etcd range: {e}") from None
                lo = mid + 1
        self._compacted = lo if lo > 1 else 0
        self._compacted_checked = time.monotonic()
        return self._compacted

    async def get(self, key: str, revision: int = 0) -> tuple[int, KeyValue | None]:
        body: dict[str, Any] = {"key": _b64(key)}
        if revision:
            body["revision"] = revision
        data = await self._read(body)
        kvs = data.get("kvs")
        return revision or int(data["header"]["revision"]), _kv(kvs[0]) if kvs else None

    async def list(
        self, prefix: str, *, revision: int = 0, limit: int = 0, start_after: str = ""
    ) -> tuple[int, list[KeyValue]]:
        start = start_after + "\x00" if start_after >= prefix else prefix
        body: dict[str, Any] = {
            "key": _b64(start),
            "range_end": _b64(prefix_end(prefix) if prefix else "\x00"),
        }
        if revision:
            body["revision"] = revision
        if limit:
            body["limit"] = limit
        data = await self._read(body)
        return revision or int(data["header"]["revision"]), [_kv(kv) for kv in data.get("kvs", ())]

    async def count(self, prefix: str) -> tuple[int, int]:
        body = {
            "key": _b64(prefix or "\x00"),
            "range_end": _b64(prefix_end(prefix) if prefix else "\x00"),
            "count_only": True,
        }
        data = await self._read(body)
        return int(data["header"]["revision"]), int(data.get("count", 0))

    # -- writes ------------------------------------------------------------------------------

    async def create(self, key: str, value: bytes, lease: int = 0) -> KeyValue:
        k = _b64(key)
        data = await self._txn(
            {
                "compare": [{"key": k, "target": "CREATE", "result": "EQUAL", "create_revision": 0}],
                "success": [{"request_put": {"key": k, "value": _b64(value)}}],
            }
        )
        if not data.get("succeeded"):
            raise KeyExists(f"store create: key {key} exists")
        rev = int(data["header"]["revision"])
        return KeyValue(key, bytes(value), rev, rev, 0)

    def _guard(self, k: str, expect: int) -> dict[str, Any]:
        if expect:
            return {"key": k, "target": "MOD", "result": "EQUAL", "mod_revision": expect}
        return {"key": k, "target": "VERSION", "result": "GREATER", "version": 0}

    async def _conditional(
        self, op: str, key: str, expect: int, request: dict[str, Any]
    ) -> tuple[int, KeyValue]:
        k = _b64(key)
        data = await self._txn(
            {
                "compare": [self._guard(k, expect)],
                "success": [request],
                "failure": [{"request_range": {"key": k}}],
            }
        )
        response = data["responses"][0]
        if data.get("succeeded"):
            body = response.get("response_put") or response.get("response_delete_range") or {}
            prev = body.get("prev_kv") or (body.get("prev_kvs") or [None])[0]
            return int(data["header"]["revision"]), _kv(prev)
        kvs = response.get("response_range", {}).get("kvs")
        if not kvs:
            raise KeyNotFound(f"store {op}: key {key} not found")
        raise RevisionConflict(f"store {op}: key {key} is at revision {_kv(kvs[0]).mod_revision}, expected {expect}")

    async def update(self, key: str, value: bytes, expect_revision: int) -> KeyValue:
        request = {"request_put": {"key": _b64(key), "value": _b64(value), "prev_kv": True}}
        rev, prev = await self._conditional("update", key, expect_revision, request)
        return KeyValue(key, bytes(value), prev.create_revision, rev, 0)

    async def delete(self, key: str, expect_revision: int = 0) -> KeyValue:
        request = {"request_delete_range": {"key": _b64(key), "prev_kv": True}}
        rev, prev = await self._conditional("delete", key, expect_revision, request)
        return KeyValue(key, prev.value, prev.create_revision, rev, 0)

    async def _txn(self, body: dict[str, Any]) -> dict[str, Any]:
        try:
            return await self._call("/v3/kv/txn", body)
        except _EtcdError as e:
            raise StoreError(f"store etcd txn: {e}") from None

    # -- watch -------------------------------------------------------------------------------

    async def watch(self, prefix: str, after_revision: int) -> AsyncIterator[EventBatch]:
        next_rev = after_revision + 1
        request = {
            "create_request": {
                "key": _b64(prefix or "\x00"),
                "range_end": _b64(prefix_end(prefix) if prefix else "\x00"),
                "prev_kv": True,
            }
        }
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=self.connect_timeout, sock_read=None)
        failures = 0
        while True:
            request["create_request"]["start_revision"] = next_rev
            try:
                resp = await self._open("/v3/watch", request, timeout)
                async with resp:
                    buffer = bytearray()
                    async for chunk in resp.content.iter_any():
                        buffer += chunk
                        while (end := buffer.find(b"\n")) >= 0:
                            line = bytes(buffer[:end])
                            del buffer[: end + 1]
                            batch = self._watch_result(line, after_revision, next_rev)
                            if batch:
                                failures = 0
                                next_rev = batch[-1].revision + 1
                                yield batch
                await asyncio.sleep(0.05)  # the server ended the stream: resume without spinning
            except (TimeoutError, aiohttp.ClientError, Unavailable, RuntimeError) as e:
                if self._session is None or self._session.closed:
                    return  # the store is closing
                if isinstance(e, RuntimeError) and "closed" not in str(e).lower():
                    raise
                failures += 1
                if failures > 3 * len(self.endpoints):
                    raise Unavailable(f"store etcd watch {prefix!r}: {e}") from e
                self._current = (self._current + 1) % len(self.endpoints)
                await asyncio.sleep(min(0.1 * failures, 1.0))

    def _watch_result(self, line: bytes, after_revision: int, next_rev: int) -> EventBatch:
        if not line.strip():
            return []
        message = json.loads(line)
        result = message.get("result")
        if result is None:
            error = message.get("error", message)
            raise Unavailable(f"store etcd watch: {error}")
        if result.get("canceled"):
            compacted = int(result.get("compact_revision", 0))
            if compacted:
                self._compacted = max(self._compacted, compacted)
                raise Compacted(after_revision if next_rev == after_revision + 1 else next_rev - 1, compacted)
            raise Unavailable(f"store etcd watch canceled: {result.get('cancel_reason', '')}")
        return [_event(e) for e in result.get("events", ())]

    # -- compaction --------------------------------------------------------------------------

    async def compact(self, revision: int) -> int:
        cur = await self.current_revision()
        if revision > cur:
            raise FutureRevision(revision, cur)
        target = min(revision, cur - self.compact_min_retain)
        known = await self.compact_revision()
        if target <= known:
            return known
        try:
            await self._call("/v3/kv/compaction", {"revision": target, "physical": True})
        except _EtcdError as e:
            if _COMPACTED not in str(e):
                raise StoreError(f"store etcd compaction to {target}: {e}") from None
            return await self.compact_revision(force=True)
        self._compacted = target
        self._compacted_checked = time.monotonic()
        return target
