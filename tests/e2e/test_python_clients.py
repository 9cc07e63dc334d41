"""The official ``kubernetes`` client, ``kubernetes_asyncio`` and ``lightkube``, unchanged, against a real
``pyk3s server`` through its admin kubeconfig: CRUD, the four patch types, server-side apply, watch."""

from __future__ import annotations

import secrets
import threading

import pytest
from pyk3s_server import ServerProcess

pytestmark = pytest.mark.e2e


@pytest.fixture
def ns(api_server: ServerProcess) -> str:
    name = f"pk-py-{secrets.token_hex(3)}"
    api_server.kubectl("create", "namespace", name)
    return name


def stored(srv: ServerProcess, ns: str, name: str) -> dict:
    return srv.kubectl("get", "cm", name, "-n", ns, "-o", "json", "--show-managed-fields").json()  # type: ignore


def cm(name: str, data: dict[str, str]) -> dict:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": data}


def test_kubernetes_client_crud_patch_apply(api_server, ns):
    from kubernetes import client, config
    from kubernetes.client.rest import ApiException

    api = client.CoreV1Api(config.new_client_from_config(config_file=str(api_server.kubeconfig)))
    created = api.create_namespaced_config_map(ns, cm("a", {"k": "1"}))
    assert created.metadata.uid and created.metadata.resource_version
    assert api.read_namespaced_config_map("a", ns).data == {"k": "1"}
    assert [i.metadata.name for i in api.list_namespaced_config_map(ns).items if i.metadata.name == "a"] == ["a"]

    current = api.read_namespaced_config_map("a", ns)
    current.data = {"k": "2"}
    replaced = api.replace_namespaced_config_map("a", ns, current)
    assert int(replaced.metadata.resource_version) > int(created.metadata.resource_version)
    with pytest.raises(ApiException) as stale:
        api.replace_namespaced_config_map("a", ns, current)   # current still carries the old resourceVersion
    assert stale.value.status == 409

    api.patch_namespaced_config_map("a", ns, {"data": {"smp": "y"}})                  # dict: strategic merge
    api.patch_namespaced_config_map("a", ns, [{"op": "add", "path": "/data/json", "value": "y"}])  # list: JSON patch
    api.patch_namespaced_config_map("a", ns, {"data": {"smp": None}}, _content_type="application/merge-patch+json")
    assert stored(api_server, ns, "a")["data"] == {"k": "2", "json": "y"}

    applied = api.patch_namespaced_config_map("b", ns, cm("b", {"x": "1"}), field_manager="py",
                                              _content_type="application/apply-patch+yaml")
    assert applied.data == {"x": "1"}
    entry = stored(api_server, ns, "b")["metadata"]["managedFields"][0]
    assert (entry["manager"], entry["operation"]) == ("py", "Apply")

    api.delete_namespaced_config_map("a", ns)
    with pytest.raises(ApiException) as missing:
        api.read_namespaced_config_map("a", ns)
    assert missing.value.status == 404


def test_kubernetes_client_watch(api_server, ns):
    from kubernetes import client, config, watch

    api = client.CoreV1Api(config.new_client_from_config(config_file=str(api_server.kubeconfig)))
    api.create_namespaced_config_map(ns, cm("w", {"k": "1"}))
    seen: list[tuple[str, str, dict | None]] = []
    w = watch.Watch()
    for ev in w.stream(api.list_namespaced_config_map, ns, timeout_seconds=20):
        obj = ev["object"]
        seen.append((ev["type"], obj.metadata.name, obj.data))
        if ev["type"] == "ADDED" and obj.metadata.name == "w":
            api.patch_namespaced_config_map("w", ns, {"data": {"k": "2"}})
        elif ev["type"] == "MODIFIED":
            api.delete_namespaced_config_map("w", ns)
        elif ev["type"] == "DELETED":
            w.stop()
    mine = [s for s in seen if s[1] == "w"]
    assert mine == [("ADDED", "w", {"k": "1"}), ("MODIFIED", "w", {"k": "2"}), ("DELETED", "w", {"k": "2"})]


async def test_kubernetes_asyncio_crud_and_watch(api_server, ns):
    from kubernetes_asyncio import client, config, watch
    from kubernetes_asyncio.client.rest import ApiException

    api_client = await config.new_client_from_config(config_file=str(api_server.kubeconfig))
    try:
        api = client.CoreV1Api(api_client)
        await api.create_namespaced_config_map(ns, cm("a", {"k": "1"}))
        got = await api.read_namespaced_config_map("a", ns)
        got.data["k"] = "2"
        await api.replace_namespaced_config_map("a", ns, got)
        await api.patch_namespaced_config_map("a", ns, {"data": {"smp": "y"}})
        await api.patch_namespaced_config_map("a", ns, [{"op": "remove", "path": "/data/smp"}])
        await api.patch_namespaced_config_map("a", ns, {"data": {"m": "y"}},
                                              _content_type="application/merge-patch+json")
        await api.patch_namespaced_config_map("b", ns, cm("b", {"x": "1"}), field_manager="pyasync",
                                              _content_type="application/apply-patch+yaml")
        listed = await api.list_namespaced_config_map(ns)
        assert {i.metadata.name: i.data for i in listed.items if i.metadata.name in ("a", "b")} == {
            "a": {"k": "2", "m": "y"}, "b": {"x": "1"}}
        assert stored(api_server, ns, "a")["data"] == {"k": "2", "m": "y"}

        seen = []
        w = watch.Watch()   # kubernetes_asyncio sends watch=True (capital T): spec 4.10
        async for ev in w.stream(api.list_namespaced_config_map, ns, timeout_seconds=20):
            seen.append((ev["type"], ev["object"].metadata.name))
            if ev["type"] == "ADDED" and ev["object"].metadata.name == "b":
                await api.patch_namespaced_config_map("b", ns, {"data": {"x": "2"}})
            elif ev["type"] == "MODIFIED":
                await api.delete_namespaced_config_map("b", ns)
            elif ev["type"] == "DELETED":
                w.stop()
                break
        assert [s for s in seen if s[1] == "b"] == [("ADDED", "b"), ("MODIFIED", "b"), ("DELETED", "b")]
        with pytest.raises(ApiException) as missing:
            await api.read_namespaced_config_map("b", ns)
        assert missing.value.status == 404
    finally:
        await api_client.close()


def test_lightkube_crud_patch_apply_watch(api_server, ns):
    from lightkube import ApiError, Client, KubeConfig
    from lightkube.models.meta_v1 import ObjectMeta
    from lightkube.resources.core_v1 import ConfigMap
    from lightkube.types import PatchType

    lk = Client(KubeConfig.from_file(str(api_server.kubeconfig)), namespace=ns, field_manager="lk")
    lk.create(ConfigMap(metadata=ObjectMeta(name="a"), data={"k": "1"}))
    got = lk.get(ConfigMap, "a")
    got.data = {"k": "2"}
    lk.replace(got)
    lk.patch(ConfigMap, "a", {"data": {"smp": "y"}})
    lk.patch(ConfigMap, "a", {"data": {"m": "y"}}, patch_type=PatchType.MERGE)
    lk.patch(ConfigMap, "a", [{"op": "remove", "path": "/data/smp"}], patch_type=PatchType.JSON)
    assert lk.get(ConfigMap, "a").data == {"k": "2", "m": "y"}
    lk.apply(ConfigMap(metadata=ObjectMeta(name="b"), data={"x": "1"}))
    assert {c.metadata.name for c in lk.list(ConfigMap)} >= {"a", "b"}
    assert stored(api_server, ns, "b")["metadata"]["managedFields"][0]["manager"] == "lk"

    seen = []

    def follow() -> None:   # lightkube re-watches forever: a thread bounds the wait
        for op, obj in lk.watch(ConfigMap, namespace=ns):
            seen.append((op, obj.metadata.name))
            if op == "ADDED" and obj.metadata.name == "b":
                lk.patch(ConfigMap, "b", {"data": {"x": "2"}})
            elif op == "MODIFIED" and obj.metadata.name == "b":
                lk.delete(ConfigMap, "b")
            elif op == "DELETED":
                return

    t = threading.Thread(target=follow, daemon=True)
    t.start()
    t.join(30)
    assert not t.is_alive(), f"watch events so far: {seen}"
    assert [s for s in seen if s[1] == "b"] == [("ADDED", "b"), ("MODIFIED", "b"), ("DELETED", "b")]
    lk.delete(ConfigMap, "a")
    with pytest.raises(ApiError) as missing:
        lk.get(ConfigMap, "a")
    assert missing.value.status.code == 404
