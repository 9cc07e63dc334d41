"""Fixtures for the API core tests: a real ApiServer on the memory store, driven in-process."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

from pyk3s.api.app import ApiServer
from pyk3s.api.config import ApiConfig
from pyk3s.api.request import ApiRequest, ApiResponse
from pyk3s.api.store.memory import MemoryStore


class ApiCaller:
    """Small helper: JSON in, (status, JSON out)."""

    def __init__(self, api: ApiServer) -> None:
        self.api = api

    async def call(self, method: str, path: str, body: Any = None, *, query: list[tuple[str, str]] | None = None,
                   content_type: str = "application/json", accept: str = "application/json",
                   raw: bytes | None = None) -> tuple[int, Any, ApiResponse]:
        if "?" in path:
            path, qs = path.split("?", 1)
            query = list(query or []) + [tuple(p.split("=", 1)) if "=" in p else (p, "") for p in qs.split("&")]  # type: ignore[misc]
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else b"")
        req = ApiRequest(method, path, list(query or []), {"content-type": content_type, "accept": accept}, data)
        resp = await self.api.handle(req)
        if resp.stream is not None:
            return resp.status, None, resp
        try:
            out = json.loads(resp.body) if resp.body else None
        except ValueError:
            out = resp.body.decode()
        return resp.status, out, resp

    async def ok(self, method: str, path: str, body: Any = None, **kw: Any) -> Any:
        status, out, _ = await self.call(method, path, body, **kw)
        assert status < 300, (status, out)
        return out


@pytest.fixture
async def api_store() -> AsyncIterator[MemoryStore]:
    store = MemoryStore()
    await store.start()
    yield store
    await store.close()


@pytest.fixture
async def api_server(api_store: MemoryStore) -> AsyncIterator[ApiServer]:
    api = ApiServer(api_store, ApiConfig(bookmark_interval=0.2))
    await api.start()
    yield api
    await api.stop()


@pytest.fixture
def kc(api_server: ApiServer) -> ApiCaller:
    return ApiCaller(api_server)
