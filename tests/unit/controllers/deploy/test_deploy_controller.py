"""The deploy controller against the real API core on a memory store (specs/k3s.md 3.2-3.6)."""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from pyk3s.api.app import ApiServer
from pyk3s.api.config import ApiConfig
from pyk3s.api.store.memory import MemoryStore
from pyk3s.client import Client, NotFound
from pyk3s.controllers.common.settings import ControllerSettings, DeploySettings
from pyk3s.controllers.deploy import DeployController, owner_hash
from pyk3s.controllers.deploy.controller import GVKS_ANNOTATION, LAST_ERROR, LAST_RESULT
from pyk3s.controllers.helm import ensure_crds
from pyk3s.manifests.stage import StageSettings, stage, staged_checksums

CM = """apiVersion: v1
kind: ConfigMap
metadata:
  name: {name}
  namespace: {ns}
data:
  {key}: "{value}"
"""


def cm(name: str, key: str = "k", value: str = "v", ns: str = "kube-system") -> str:
    return CM.format(name=name, ns=ns, key=key, value=value)


@dataclass
class Env:
    api: ApiServer
    store: MemoryStore
    client: Client
    server_dir: Path
    mdir: Path

    def controller(self, disable: frozenset[str] = frozenset(), rescan: float = 15.0) -> DeployController:
        return DeployController(self.client, ControllerSettings(deploy=DeploySettings(
            manifests_dir=self.mdir, server_dir=self.server_dir, disable=disable, rescan_interval=rescan)))

    async def get(self, api_version: str, plural: str, name: str, ns: str | None = "kube-system") -> dict[str, Any]:
        return await self.client.resource(api_version, plural).get(name, ns)

    async def gone(self, api_version: str, plural: str, name: str, ns: str | None = "kube-system") -> bool:
        try:
            await self.get(api_version, plural, name, ns)
        except NotFound:
            return True
        return False

    async def addon(self, name: str) -> dict[str, Any]:
        return await self.get("k3s.cattle.io/v1", "addons", name)

    async def events(self, addon: str) -> list[dict[str, Any]]:
        items = (await self.client.resource("v1", "events").list("kube-system"))["items"]
        return [e for e in items if e["involvedObject"]["name"] == addon and e["involvedObject"]["kind"] == "Addon"]

    async def reasons(self, addon: str) -> list[str]:
        return [e["reason"] for e in sorted(await self.events(addon), key=lambda e: e["metadata"]["name"])]


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[Env]:
    store = MemoryStore()
    await store.start()
    api = ApiServer(store, ApiConfig(bookmark_interval=0.2))
    await api.start()
    server_dir = tmp_path / "server"
    mdir = server_dir / "manifests"
    mdir.mkdir(parents=True)
    try:
        yield Env(api, store, Client.in_process(api), server_dir, mdir)
    finally:
        await api.stop()
        await store.close()


async def test_applies_multi_doc_json_and_list_with_objectset_metadata(env: Env) -> None:
    text = cm("one") + "---\n# only a comment\n---\n" + """apiVersion: v1
kind: List
items:
- apiVersion: v1
  kind: ConfigMap
  metadata: {name: two}
  data: {a: b}
"""
    (env.mdir / "multi.yaml").write_text(text)
    (env.mdir / "j.json").write_text(json.dumps(
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "three", "namespace": "default"}}))
    assert await env.controller().run_pass(forced=True)

    one = await env.get("v1", "configmaps", "one")
    two = await env.get("v1", "configmaps", "two", "default")  # no namespace in the file -> default
    await env.get("v1", "configmaps", "three", "default")
    for obj in (one, two):
        assert obj["metadata"]["labels"]["objectset.rio.cattle.io/hash"] == owner_hash("multi")
        ann = obj["metadata"]["annotations"]
        assert ann["objectset.rio.cattle.io/owner-name"] == "multi"
        assert ann["objectset.rio.cattle.io/owner-gvk"] == "k3s.cattle.io/v1, Kind=Addon"
        assert ann["objectset.rio.cattle.io/owner-namespace"] == "kube-system"
        assert "objectset.rio.cattle.io/applied" in ann
    addon = await env.addon("multi")
    assert addon["spec"]["source"] == str(env.mdir / "multi.yaml")
    assert addon["spec"]["checksum"] == hashlib.sha256(text.encode()).hexdigest()
    assert addon["metadata"]["annotations"][GVKS_ANNOTATION] == "/v1, Kind=ConfigMap"
    assert await env.reasons("multi") == ["ApplyingManifest", "AppliedManifest"]
    assert (await env.addon("j"))["metadata"]["annotations"][LAST_RESULT] == "AppliedManifest"


async def test_unchanged_file_is_not_reapplied_and_touch_alone_does_nothing(env: Env) -> None:
    path = env.mdir / "a.yaml"
    path.write_text(cm("a"))
    ctrl = env.controller()
    assert await ctrl.run_pass(forced=True)
    rev = await env.store.current_revision()
    assert await ctrl.run_pass(forced=False)
    path.touch()
    assert await ctrl.run_pass(forced=False)
    assert await env.store.current_revision() == rev


async def test_three_way_merge_keeps_foreign_fields_restores_own_and_prunes_removed(env: Env) -> None:
    path = env.mdir / "dns.yaml"
    path.write_text(cm("coredns", "Corefile", "from-file") + "---\n" + cm("extra"))
    ctrl = env.controller()
    assert await ctrl.run_pass(forced=True)
    cms = env.client.resource("v1", "configmaps")
    await cms.patch("coredns", {"data": {"NodeHosts": "10.0.0.1 n1\n", "Corefile": "edited-live"}}, "kube-system")

    assert await ctrl.run_pass(forced=True)  # what a restart does
    live = await env.get("v1", "configmaps", "coredns")
    assert live["data"] == {"Corefile": "from-file", "NodeHosts": "10.0.0.1 n1\n"}

    path.write_text(cm("coredns", "Corefile", "changed"))  # "extra" removed from the file
    assert await ctrl.run_pass(forced=False)
    assert (await env.get("v1", "configmaps", "coredns"))["data"]["Corefile"] == "changed"
    assert await env.gone("v1", "configmaps", "extra")


async def test_deleting_a_file_leaves_its_objects_and_addon(env: Env) -> None:
    path = env.mdir / "keep.yaml"
    path.write_text(cm("keep"))
    ctrl = env.controller()
    assert await ctrl.run_pass(forced=True)
    path.unlink()
    assert await ctrl.run_pass(forced=True)
    await env.get("v1", "configmaps", "keep")
    await env.addon("keep")


async def test_skip_file_and_ignored_names(env: Env) -> None:
    (env.mdir / "s.yaml").write_text(cm("skipped"))
    (env.mdir / "s.yaml.skip").write_text("")
    (env.mdir / ".hidden.yaml").write_text(cm("hidden"))
    (env.mdir / "notes.txt").write_text(cm("txt"))
    assert await env.controller().run_pass(forced=True)
    for name in ("skipped", "hidden", "txt"):
        assert await env.gone("v1", "configmaps", name)
    assert await env.gone("k3s.cattle.io/v1", "addons", "s")


async def test_invalid_yaml_is_reported_retried_and_never_blocks_other_files(env: Env) -> None:
    good = env.mdir / "b-good.yaml"
    bad = env.mdir / "a-bad.yaml"
    good.write_text(cm("good"))
    bad.write_text(cm("bad", value="1"))
    ctrl = env.controller()
    assert await ctrl.run_pass(forced=True)

    bad.write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: bad\n")
    good.write_text(cm("good", value="2"))
    assert not await ctrl.run_pass(forced=False)
    assert (await env.get("v1", "configmaps", "good"))["data"]["k"] == "2"
    assert (await env.get("v1", "configmaps", "bad"))["data"]["k"] == "1"  # applied before: untouched
    warning = [e for e in await env.events("a-bad") if e["type"] == "Warning"][-1]
    assert warning["reason"] == "ParseManifestFailed"
    assert str(bad) in warning["message"] and "line" in warning["message"]
    assert warning["source"]["component"] == "deploy"
    ann = (await env.addon("a-bad"))["metadata"]["annotations"]
    assert ann[LAST_RESULT] == "ParseManifestFailed" and str(bad) in ann[LAST_ERROR]

    bad.write_text(cm("bad", value="3"))
    assert await ctrl.run_pass(forced=True)
    assert (await env.get("v1", "configmaps", "bad"))["data"]["k"] == "3"
    assert LAST_ERROR not in (await env.addon("a-bad"))["metadata"]["annotations"]


async def test_rejected_object_names_document_and_message_and_keeps_the_rest(env: Env) -> None:
    path = env.mdir / "mixed.yaml"
    path.write_text(cm("first") + "---\n" + cm("second"))
    ctrl = env.controller()
    assert await ctrl.run_pass(forced=True)
    bad_svc = """apiVersion: v1
kind: Service
metadata: {name: broken, namespace: default}
spec: {clusterIP: not-an-ip, ports: [{port: 80}]}
"""
    path.write_text(cm("first", value="new") + "---\n" + bad_svc)  # "second" removed, but the set failed
    assert not await ctrl.run_pass(forced=False)
    (warning,) = [e for e in await env.events("mixed") if e["type"] == "Warning"]
    assert warning["reason"] == "ApplyManifestFailed"
    assert str(path) in warning["message"]
    assert "document 2 (Service default/broken)" in warning["message"]
    assert "must be a valid IP address" in warning["message"]
    assert (await env.get("v1", "configmaps", "first"))["data"]["k"] == "new"
    await env.get("v1", "configmaps", "second")  # no pruning from a half-applied file
    assert (await env.addon("mixed"))["spec"]["checksum"] != hashlib.sha256(path.read_bytes()).hexdigest()


async def test_unreadable_file_gets_read_failed_event(env: Env) -> None:
    (env.mdir / "dangling.yaml").symlink_to(env.mdir / "nowhere" / "x.yaml")
    (env.mdir / "ok.yaml").write_text(cm("ok"))
    assert not await env.controller().run_pass(forced=True)
    await env.get("v1", "configmaps", "ok")
    (warning,) = [e for e in await env.events("dangling") if e["type"] == "Warning"]
    assert warning["reason"] == "ReadManifestFailed"
    assert "dangling.yaml" in warning["message"]


async def test_custom_resource_beside_its_crd_converges(env: Env) -> None:
    crd = """apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: widgets.example.com}
spec:
  group: example.com
  names: {kind: Widget, listKind: WidgetList, plural: widgets, singular: widget}
  scope: Namespaced
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}
"""
    widget = "apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w1, namespace: default}\nspec: {size: 3}\n"
    (env.mdir / "crd.yaml").write_text(widget + "---\n" + crd)  # the CR even comes first
    ctrl = env.controller()
    ok = False
    for _ in range(5):
        if await ctrl.run_pass(forced=True):
            ok = True
            break
        await asyncio.sleep(0.1)
    assert ok
    assert (await env.get("example.com/v1", "widgets", "w1", "default"))["spec"] == {"size": 3}


async def test_disable_uninstalls_pyk3s_copy_but_applies_a_users_copy(env: Env) -> None:
    await ensure_crds(env.client)  # as the server does before the first pass (traefik.yaml holds HelmCharts)
    record = stage(StageSettings(server_dir=env.server_dir))
    assert "coredns.yaml" in record
    assert await env.controller().run_pass(forced=True)
    await env.get("apps/v1", "deployments", "coredns")

    ctrl = env.controller(disable=frozenset({"coredns"}))
    assert await ctrl.run_pass(forced=True)
    assert not (env.mdir / "coredns.yaml").exists()
    assert await env.gone("apps/v1", "deployments", "coredns")
    assert await env.gone("v1", "configmaps", "coredns")
    assert await env.gone("rbac.authorization.k8s.io/v1", "clusterroles", "system:coredns", None)
    assert await env.gone("k3s.cattle.io/v1", "addons", "coredns")
    assert "coredns.yaml" not in staged_checksums(env.server_dir)

    # The guide's recipe: the saved copy comes back under the same name and is changed.
    (env.mdir / "coredns.yaml").write_text(cm("coredns", "Corefile", "mine"))
    assert await ctrl.run_pass(forced=False)
    assert (await env.get("v1", "configmaps", "coredns"))["data"]["Corefile"] == "mine"
    assert (env.mdir / "coredns.yaml").exists()


async def test_disabled_name_with_user_content_is_applied_even_if_once_staged(env: Env) -> None:
    stage(StageSettings(server_dir=env.server_dir))
    (env.mdir / "traefik.yaml").write_text(cm("traefik-custom", value="user"))
    assert await env.controller(disable=frozenset({"traefik"})).run_pass(forced=True)
    assert (await env.get("v1", "configmaps", "traefik-custom"))["data"]["k"] == "user"
    assert (env.mdir / "traefik.yaml").exists()


async def test_run_loop_reacts_to_file_events_and_rescans(env: Env) -> None:
    ctrl = env.controller(rescan=30.0)  # only a file event can explain a quick apply
    task = asyncio.create_task(ctrl.run())
    try:
        await asyncio.sleep(0.5)
        (env.mdir / "late.yaml").write_text(cm("late"))
        for _ in range(80):
            if not await env.gone("v1", "configmaps", "late"):
                break
            await asyncio.sleep(0.1)
        else:
            raise AssertionError("a new file was not applied within 8 s of its file event")
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
