"""List/watch semantics: pagination, selectors, initial events, resume, 410, bookmarks, transitions."""

from __future__ import annotations

import asyncio
import json

CM = "/api/v1/namespaces/default/configmaps"


def cm(name: str, labels: dict | None = None) -> dict:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "labels": labels or {}}}


class Events:
    def __init__(self, resp):
        self.it = resp.stream.__aiter__()
        self.buf = b""

    async def next(self, timeout: float = 2.0) -> dict:
        while b"\n" not in self.buf:
            self.buf += await asyncio.wait_for(self.it.__anext__(), timeout)
        line, self.buf = self.buf.split(b"\n", 1)
        return json.loads(line)

    async def close(self):
        await self.it.aclose()


async def open_watch(kc, path, **kw):
    status, _, resp = await kc.call("GET", path, **kw)
    assert status == 200 and resp.stream is not None
    return Events(resp)


async def test_pagination(kc):
    for i in range(7):
        await kc.ok("POST", CM, cm(f"c{i}"))
    names, cont, rvs = [], "", set()
    while True:
        q = [("limit", "3")] + ([("continue", cont)] if cont else [])
        out = await kc.ok("GET", CM, query=q)
        names += [i["metadata"]["name"] for i in out["items"]]
        rvs.add(out["metadata"]["resourceVersion"])
        cont = out["metadata"].get("continue", "")
        if not cont:
            break
    assert names == [f"c{i}" for i in range(7)] and len(rvs) == 1
    status, err, _ = await kc.call("GET", CM, query=[("continue", "garbage!")])
    assert status == 400


async def test_selectors(kc):
    await kc.ok("POST", CM, cm("a", {"env": "prod", "tier": "fe"}))
    await kc.ok("POST", CM, cm("b", {"env": "dev"}))
    await kc.ok("POST", CM, cm("c"))

    async def names(q):
        out = await kc.ok("GET", CM, query=q)
        return [i["metadata"]["name"] for i in out["items"]]

    assert await names([("labelSelector", "env=prod")]) == ["a"]
    assert await names([("labelSelector", "env in (prod,dev)")]) == ["a", "b"]
    assert await names([("labelSelector", "env notin (prod)")]) == ["b", "c"]
    assert await names([("labelSelector", "!env")]) == ["c"]
    assert await names([("labelSelector", "env,tier")]) == ["a"]
    assert await names([("labelSelector", "env!=dev")]) == ["a", "c"]
    assert await names([("fieldSelector", "metadata.name=b")]) == ["b"]
    assert await names([("fieldSelector", "metadata.name!=b,metadata.namespace=default")]) == ["a", "c"]
    status, err, _ = await kc.call("GET", CM, query=[("fieldSelector", "spec.nodeName=x")])
    assert status == 400 and err["message"] == "field label not supported: spec.nodeName"
    out = await kc.ok("GET", "/api/v1/pods", query=[("fieldSelector", "spec.nodeName=n1,status.phase=Running")])
    assert out["items"] == []


async def test_watch_initial_then_changes(kc):
    await kc.ok("POST", CM, cm("a"))
    ev = await open_watch(kc, CM, query=[("watch", "True")])  # Go-style boolean
    first = await ev.next()
    assert first["type"] == "ADDED" and first["object"]["metadata"]["name"] == "a"
    await kc.ok("POST", CM, cm("b"))
    e = await ev.next()
    assert e["type"] == "ADDED" and e["object"]["metadata"]["name"] == "b"
    await kc.ok("PATCH", f"{CM}/b", {"data": {"k": "v"}}, content_type="application/merge-patch+json")
    e = await ev.next()
    assert e["type"] == "MODIFIED" and e["object"]["data"] == {"k": "v"}
    await kc.ok("DELETE", f"{CM}/b")
    e = await ev.next()
    assert e["type"] == "DELETED" and e["object"]["metadata"]["name"] == "b"
    await ev.close()


async def test_watch_from_resource_version(kc):
    await kc.ok("POST", CM, cm("a"))
    lst = await kc.ok("GET", CM)
    rv = lst["metadata"]["resourceVersion"]
    await kc.ok("POST", CM, cm("b"))
    ev = await open_watch(kc, CM, query=[("watch", ""), ("resourceVersion", rv)])  # "" counts as true
    e = await ev.next()
    assert e["type"] == "ADDED" and e["object"]["metadata"]["name"] == "b"
    await ev.close()
    # the same history from a second watcher, now served by the shared hub
    ev = await open_watch(kc, CM, query=[("watch", "1"), ("resourceVersion", rv)])
    assert (await ev.next())["object"]["metadata"]["name"] == "b"
    await ev.close()


async def test_watch_expired(kc, api_store):
    for i in range(3):
        await kc.ok("POST", CM, cm(f"c{i}"))
    await api_store.compact(await api_store.current_revision())
    ev = await open_watch(kc, CM, query=[("watch", "true"), ("resourceVersion", "1")])
    e = await ev.next()
    assert e["type"] == "ERROR" and e["object"]["code"] == 410 and e["object"]["reason"] == "Expired"
    assert e["object"]["message"].startswith("too old resource version: 1 (")


async def test_watch_bookmarks_and_timeout(kc):
    lst = await kc.ok("GET", CM)
    ev = await open_watch(kc, CM, query=[("watch", "true"), ("allowWatchBookmarks", "true"),
                                         ("resourceVersion", lst["metadata"]["resourceVersion"]),
                                         ("timeoutSeconds", "1")])
    e = await ev.next()
    assert e["type"] == "BOOKMARK" and e["object"]["kind"] == "ConfigMap"
    assert e["object"]["metadata"]["resourceVersion"]
    # the stream ends by itself at timeoutSeconds
    with __import__("pytest").raises(StopAsyncIteration):
        while True:
            await ev.next(timeout=3)


async def test_watch_selector_transitions(kc):
    await kc.ok("POST", CM, cm("a", {"app": "x"}))
    ev = await open_watch(kc, CM, query=[("watch", "true"), ("labelSelector", "app=x")])
    assert (await ev.next())["type"] == "ADDED"
    await kc.ok("POST", CM, cm("other", {"app": "y"}))  # never matches: nothing sent
    await kc.ok("PATCH", f"{CM}/a", {"metadata": {"labels": {"app": "z"}}}, content_type="application/merge-patch+json")
    e = await ev.next()
    assert e["type"] == "DELETED" and e["object"]["metadata"]["labels"] == {"app": "z"}
    await kc.ok("PATCH", f"{CM}/other", {"metadata": {"labels": {"app": "x"}}}, content_type="application/merge-patch+json")
    e = await ev.next()
    assert e["type"] == "ADDED" and e["object"]["metadata"]["name"] == "other"
    await ev.close()


async def test_watch_single_object_by_field(kc):
    await kc.ok("POST", CM, cm("a"))
    await kc.ok("POST", CM, cm("b"))
    lst = await kc.ok("GET", CM, query=[("fieldSelector", "metadata.name=a"), ("resourceVersion", "0"), ("limit", "500")])
    assert [i["metadata"]["name"] for i in lst["items"]] == ["a"]
    ev = await open_watch(kc, CM, query=[("watch", "true"), ("fieldSelector", "metadata.name=a"),
                                         ("resourceVersion", lst["metadata"]["resourceVersion"])])
    await kc.ok("DELETE", f"{CM}/b")
    await kc.ok("DELETE", f"{CM}/a")
    e = await ev.next()
    assert e["type"] == "DELETED" and e["object"]["metadata"]["name"] == "a"
    await ev.close()


async def test_watch_table(kc):
    await kc.ok("POST", CM, cm("a"))
    accept = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"
    ev = await open_watch(kc, CM, query=[("watch", "true")], accept=accept)
    e = await ev.next()
    assert e["object"]["kind"] == "Table" and e["object"]["columnDefinitions"]
    assert e["object"]["rows"][0]["cells"][0] == "a"
    await kc.ok("POST", CM, cm("b"))
    e = await ev.next()
    assert e["object"]["kind"] == "Table" and not e["object"]["columnDefinitions"]
    await ev.close()


async def test_many_watchers_share_one_store_watch(kc, api_server):
    lst = await kc.ok("GET", CM)
    rv = lst["metadata"]["resourceVersion"]
    watchers = [await open_watch(kc, CM, query=[("watch", "true"), ("resourceVersion", rv)]) for _ in range(50)]
    await kc.ok("POST", CM, cm("z"))
    for w in watchers:
        assert (await w.next())["object"]["metadata"]["name"] == "z"
    assert len(api_server.watches._hubs) <= 3  # configmaps + namespaces + CRDs
    for w in watchers:
        await w.close()


async def test_list_tables(kc):
    await kc.ok("POST", CM, cm("a"))
    accept = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json"
    out = await kc.ok("GET", CM, accept=accept, query=[("limit", "500")])
    assert out["kind"] == "Table" and out["apiVersion"] == "meta.k8s.io/v1"
    assert out["rows"][0]["cells"][0] == "a" and out["metadata"]["resourceVersion"]
    assert out["rows"][0]["object"]["metadata"]["name"] == "a"
    one = await kc.ok("GET", f"{CM}/a", accept=accept)
    assert one["kind"] == "Table" and len(one["rows"]) == 1
