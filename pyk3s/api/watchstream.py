"""The watch response stream (spec 4.3-4.7, 3.6): one JSON event per line.

* Initial ``ADDED`` events for the objects listed at the start (resourceVersion unset or "0",
  or ``sendInitialEvents=true``, which ends them with a ``k8s.io/initial-events-end`` BOOKMARK).
* Then changes after the start revision, filtered by namespace and selectors: an object that
  starts matching arrives as ``ADDED``, one that stops matching as ``DELETED``.
* ``BOOKMARK`` every ``bookmark_interval`` when ``allowWatchBookmarks``; the stream ends cleanly at
  ``timeoutSeconds``; a lost history ends it with an ``ERROR`` event carrying a 410 ``Expired`` Status.
* Table watches send one-row Tables, column definitions only in the first event.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from typing import Any

from pyk3s.api.codec import decode_kv, dumps, kv_json
from pyk3s.api.errors import StatusError
from pyk3s.api.query import TableRequest
from pyk3s.api.registry import present
from pyk3s.api.resources import ResourceInfo
from pyk3s.api.selectors import FieldSelector, LabelSelector
from pyk3s.api.store.base import Compacted, KeyValue
from pyk3s.api.tables import table_for
from pyk3s.api.watch import Subscription, WatchEvent

__all__ = ["error_event", "expired_error", "watch_stream"]


def error_event(err: StatusError) -> bytes:
    return b'{"type":"ERROR","object":' + dumps(err.status()) + b"}\n"


def expired_error(requested: int, compacted: int) -> StatusError:
    return StatusError(410, "Expired", f"too old resource version: {requested} ({compacted})")


class _Encoder:
    def __init__(self, info: ResourceInfo, table: TableRequest | None) -> None:
        self.info = info
        self.table = table
        self.first = True

    def event(self, etype: str, obj: dict[str, Any] | None, raw: bytes | None = None) -> bytes:
        if self.table is not None:
            assert obj is not None
            t = table_for(self.info, [obj], self.table)
            if not self.first:
                t["columnDefinitions"] = None
            self.first = False
            return b'{"type":"%s","object":' % etype.encode() + dumps(t) + b"}\n"
        if raw is None or self.info.is_custom:
            assert obj is not None
            if self.info.is_custom:
                obj = {**obj, "apiVersion": self.info.api_version}
            raw = dumps(obj)
        return b'{"type":"%s","object":' % etype.encode() + raw + b"}\n"

    def bookmark(self, rev: int, initial_end: bool = False) -> bytes:
        meta: dict[str, Any] = {"resourceVersion": str(rev)}
        if initial_end:
            meta["annotations"] = {"k8s.io/initial-events-end": "true"}
        obj = {"kind": self.info.kind, "apiVersion": self.info.api_version, "metadata": meta}
        return b'{"type":"BOOKMARK","object":' + dumps(obj) + b"}\n"


def _matcher(info: ResourceInfo, namespace: str | None, labels: LabelSelector,
             fields: FieldSelector) -> tuple[str, Callable[[dict[str, Any]], bool] | None]:
    prefix = info.list_prefix(namespace)
    if labels.empty and fields.empty:
        return prefix, None

    def match(obj: dict[str, Any]) -> bool:
        return labels.matches((obj.get("metadata") or {}).get("labels")) and fields.matches(obj)

    return prefix, match


async def watch_stream(
    info: ResourceInfo,
    namespace: str | None,
    labels: LabelSelector,
    fields: FieldSelector,
    sub: Subscription,
    *,
    start_rev: int,
    initial: list[KeyValue] | None,
    initial_end: bool,
    table: TableRequest | None,
    bookmarks: bool,
    timeout: float,
    bookmark_interval: float,
) -> AsyncIterator[bytes]:
    enc = _Encoder(info, table)
    prefix, match = _matcher(info, namespace, labels, fields)
    need_obj = table is not None or info.is_custom
    deadline = time.monotonic() + timeout
    interval = bookmark_interval
    next_bookmark = time.monotonic() + interval
    last_rev = start_rev
    try:
        for kv in initial or ():
            obj = present(info, decode_kv(kv)) if need_obj else None
            yield enc.event("ADDED", obj, None if need_obj else kv_json(kv))
        if initial_end:
            yield enc.bookmark(start_rev, initial_end=True)
        while True:
            now = time.monotonic()
            if now >= deadline:
                return
            wait = deadline - now
            if bookmarks:
                wait = min(wait, max(0.0, next_bookmark - now))
            batch = await sub.next_batch(wait)
            if batch is None:
                if bookmarks and time.monotonic() >= next_bookmark:
                    yield enc.bookmark(last_rev)
                    next_bookmark = time.monotonic() + interval
                continue
            if not batch and sub.closed:
                err = sub.error
                if isinstance(err, Compacted):
                    yield error_event(expired_error(err.requested, err.compacted))
                return
            out: list[bytes] = []
            for we in batch:
                last_rev = we.rev
                if not we.key.startswith(prefix):
                    continue
                line = _translate(enc, we, match, need_obj)
                if line is not None:
                    out.append(line)
            if out:
                yield b"".join(out)
    finally:
        sub.cancel()


def _translate(enc: _Encoder, we: WatchEvent, match: Callable[[dict[str, Any]], bool] | None,
               need_obj: bool) -> bytes | None:
    if we.type == "DELETE":
        if match is not None and not match(we.obj()):
            return None
        etype = "DELETED"
    elif match is None:
        etype = "ADDED" if we.prev is None else "MODIFIED"
    else:
        now_in = match(we.obj())
        prev = we.prev_obj()
        was_in = prev is not None and match(prev)
        if now_in:
            etype = "MODIFIED" if was_in else "ADDED"
        elif was_in:
            etype = "DELETED"
        else:
            return None
    if need_obj:
        return enc.event(etype, we.obj())
    return enc.event(etype, None, we.obj_json())
