"""The helm controller against the real API core on a memory store: install, upgrade, HelmChartConfig,
bad values, other charts, uninstall, release records, and the hand-over from the plain traefik.yaml."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from pyk3s.api.app import ApiServer
from pyk3s.api.config import ApiConfig
from pyk3s.api.store.memory import MemoryStore
from pyk3s.client import Client, NotFound
from pyk3s.controllers.helm import FINALIZER, HelmController, ensure_crds, hand_over
from pyk3s.controllers.helm.release import decode_release
from pyk3s.manifests.stage import packaged_files

TRAEFIK_URL = "https://%{KUBERNETES_API}%/static/charts/traefik-37.1.1+up37.1.0.tgz"
CRD_URL = "https://%{KUBERNETES_API}%/static/charts/traefik-crd-37.1.1+up37.1.0.tgz"


def helmchart(name: str, chart: str, values: str = "", **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "helm.cattle.io/v1", "kind": "HelmChart",
            "metadata": {"name": name, "namespace": "kube-system"},
            "spec": {"chart": chart, **({"valuesContent": values} if values else {}), **spec}}


def config(name: str, values: str, **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "helm.cattle.io/v1", "kind": "HelmChartConfig",
            "metadata": {"name": name, "namespace": "kube-system"}, "spec": {"valuesContent": values, **spec}}


class Env:
    def __init__(self, client: Client) -> None:
        self.client = client
        self.charts = client.resource("helm.cattle.io/v1", "helmcharts")
        self.configs = client.resource("helm.cattle.io/v1", "helmchartconfigs")
        self.task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self.task = asyncio.create_task(HelmController(self.client).run())

    async def stop(self) -> None:
        if self.task:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self.task

    async def get(self, api_version: str, plural: str, name: str, ns: str | None = "kube-system") -> dict[str, Any] | None:
        return await self.client.resource(api_version, plural).get_or_none(name, ns)

    async def eventually(self, check: Callable[[], Awaitable[Any]], timeout: float = 10.0) -> Any:
        deadline = asyncio.get_running_loop().time() + timeout
        last: Any = None
        while asyncio.get_running_loop().time() < deadline:
            try:
                last = await check()
            except NotFound:
                last = None
            if last:
                return last
            await asyncio.sleep(0.05)
        raise AssertionError(f"condition not reached in {timeout}s (last: {last!r})")

    async def deployment(self) -> dict[str, Any] | None:
        return await self.get("apps/v1", "deployments", "traefik")

    async def args(self) -> list[str]:
        dep = await self.deployment()
        return dep["spec"]["template"]["spec"]["containers"][0]["args"] if dep else []

    async def status(self, name: str = "traefik") -> dict[str, Any]:
        chart = await self.charts.get(name, "kube-system")
        return chart.get("status") or {}

    async def condition(self, kind: str, name: str = "traefik") -> dict[str, Any]:
        return next((c for c in (await self.status(name)).get("conditions") or [] if c["type"] == kind), {})

    async def events(self, name: str = "traefik") -> list[dict[str, Any]]:
        items = (await self.client.resource("v1", "events").list("kube-system"))["items"]
        return [e for e in items if e["involvedObject"]["kind"] == "HelmChart" and e["involvedObject"]["name"] == name]

    async def releases(self, name: str = "traefik") -> list[dict[str, Any]]:
        items = (await self.client.resource("v1", "secrets").list(
            "kube-system", label_selector=f"owner=helm,name={name}"))["items"]
        return sorted(items, key=lambda s: int(s["metadata"]["labels"]["version"]))


@pytest.fixture
async def env() -> AsyncIterator[Env]:
    store = MemoryStore()
    await store.start()
    api = ApiServer(store, ApiConfig(bookmark_interval=0.2))
    await api.start()
    client = Client.in_process(api)
    await ensure_crds(client)
    e = Env(client)
    try:
        yield e
    finally:
        await e.stop()
        await client.close()
        await api.stop()
        await store.close()


async def test_crds_have_k3s_printer_columns(env: Env) -> None:
    crd = await env.get("apiextensions.k8s.io/v1", "customresourcedefinitions", "helmcharts.helm.cattle.io", None)
    columns = [c["name"] for c in crd["spec"]["versions"][0]["additionalPrinterColumns"]]
    assert columns == ["Repo", "Chart", "Version", "TargetNamespace", "Bootstrap", "Failed", "Job"]
    spec = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]
    for field in ("chart", "repo", "version", "targetNamespace", "createNamespace", "set", "valuesContent",
                  "chartContent", "bootstrap", "failurePolicy", "timeout", "valuesSecrets", "takeOwnership"):
        assert field in spec, field
    assert await env.get("apiextensions.k8s.io/v1", "customresourcedefinitions",
                         "helmchartconfigs.helm.cattle.io", None)
    await ensure_crds(env.client)  # a second start changes nothing and does not fail


async def test_packaged_traefik_installs_with_k3s_values(env: Env) -> None:
    doc = next(d for d in yaml.safe_load_all(packaged_files()["traefik.yaml"]) if d["metadata"]["name"] == "traefik")
    doc["spec"]["set"] = {"global.systemDefaultRegistry": ""}
    await env.charts.create(doc, "kube-system")
    await env.start()
    dep = await env.eventually(env.deployment)
    pod = dep["spec"]["template"]["spec"]
    assert pod["containers"][0]["image"] == "rancher/mirrored-library-traefik:3.5.1"
    assert pod["priorityClassName"] == "system-cluster-critical"
    assert {"key": "CriticalAddonsOnly", "operator": "Exists"} in pod["tolerations"]
    assert dep["metadata"]["annotations"]["meta.helm.sh/release-name"] == "traefik"
    assert dep["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "Helm"
    svc = await env.get("v1", "services", "traefik")
    assert svc["spec"]["ipFamilyPolicy"] == "PreferDualStack" and svc["spec"]["type"] == "LoadBalancer"
    assert await env.get("networking.k8s.io/v1", "ingressclasses", "traefik", None)
    assert await env.get("rbac.authorization.k8s.io/v1", "clusterroles", "traefik-kube-system", None)
    assert await env.get("v1", "serviceaccounts", "traefik")
    status = await env.eventually(lambda: _has(env, "revision"))
    assert status["revision"] == 1 and status["release"] == "kube-system/traefik"
    assert "Deployment kube-system/traefik" in status["objects"]
    assert (await env.condition("Failed"))["status"] == "False"
    assert (await env.condition("JobCreated"))["reason"] == "NativeRender"
    chart = await env.charts.get("traefik", "kube-system")
    assert FINALIZER in chart["metadata"]["finalizers"]
    assert chart["metadata"]["annotations"]["helmcharts.cattle.io/managed-by"] == "helm-controller"
    releases = await env.releases()
    assert [r["metadata"]["name"] for r in releases] == ["sh.helm.release.v1.traefik.v1"]
    record = decode_release(releases[0])
    assert record and record["info"]["status"] == "deployed" and "kind: Deployment" in record["manifest"]
    assert record["chart"]["metadata"]["version"] == "37.1.1+up37.1.0"
    assert any(e["reason"] == "ApplyRelease" for e in await env.events())


async def _has(env: Env, field: str) -> dict[str, Any] | None:
    status = await env.status()
    return status if status.get(field) else None


async def test_chart_config_changes_apply_and_revert(env: Env) -> None:
    await env.charts.create(helmchart("traefik", TRAEFIK_URL), "kube-system")
    await env.start()
    await env.eventually(env.deployment)
    await env.configs.create(config("traefik", "deployment:\n  replicas: 2\nadditionalArguments: [--log.level=DEBUG]\n"
                                               "ports:\n  web:\n    redirections:\n      entryPoint: {to: websecure, "
                                               "scheme: https, permanent: true}\n"), "kube-system")

    async def upgraded() -> bool:
        dep = await env.deployment()
        return bool(dep and dep["spec"]["replicas"] == 2 and "--log.level=DEBUG" in await env.args())
    await env.eventually(upgraded)
    assert "--entryPoints.web.http.redirections.entryPoint.to=:443" in await env.args()
    assert (await env.eventually(lambda: _has(env, "revision")))
    await env.eventually(lambda: _revision(env, 2))
    await env.configs.delete("traefik", "kube-system")

    async def reverted() -> bool:
        dep = await env.deployment()
        return bool(dep and dep["spec"]["replicas"] == 1 and "--log.level=DEBUG" not in await env.args())
    await env.eventually(reverted)
    await env.eventually(lambda: _revision(env, 3))
    statuses = [r["metadata"]["labels"]["status"] for r in await env.releases()]
    assert statuses == ["superseded", "superseded", "deployed"]


async def _revision(env: Env, n: int) -> bool:
    return (await env.status()).get("revision") == n


async def test_dropped_objects_are_pruned(env: Env) -> None:
    await env.charts.create(helmchart("traefik", TRAEFIK_URL, "ingressClass:\n  enabled: false\n"
                                                              "tlsStore:\n  default: {defaultCertificate: {secretName: c}}\n"),
                            "kube-system")
    await ensure_traefik_crds(env)
    await env.start()
    await env.eventually(lambda: env.get("traefik.io/v1alpha1", "tlsstores", "default"))
    assert await env.get("networking.k8s.io/v1", "ingressclasses", "traefik", None) is None
    chart = await env.charts.get("traefik", "kube-system")
    chart["spec"]["valuesContent"] = ""
    await env.charts.update(chart, "kube-system")
    await env.eventually(lambda: env.get("networking.k8s.io/v1", "ingressclasses", "traefik", None))

    async def gone() -> bool:
        return await env.get("traefik.io/v1alpha1", "tlsstores", "default") is None
    await env.eventually(gone)


async def ensure_traefik_crds(env: Env) -> None:
    await env.charts.create(helmchart("traefik-crd", CRD_URL), "kube-system")


async def test_set_wins_over_the_chart_config(env: Env) -> None:
    await env.charts.create(helmchart("traefik", TRAEFIK_URL, "deployment:\n  replicas: 3\n",
                                      set={"logs.general.level": "WARN"}), "kube-system")
    await env.configs.create(config("traefik", "logs:\n  general:\n    level: DEBUG\ndeployment:\n  replicas: 2\n"),
                             "kube-system")
    await env.start()

    async def ready() -> bool:
        dep = await env.deployment()
        return bool(dep and dep["spec"]["replicas"] == 2 and "--log.level=WARN" in await env.args())
    await env.eventually(ready)


async def test_bad_values_keep_the_last_good_render(env: Env) -> None:
    await env.charts.create(helmchart("traefik", TRAEFIK_URL), "kube-system")
    await env.start()
    await env.eventually(lambda: _revision(env, 1))
    before = await env.deployment()
    cases = [
        ("deployment: [unclosed", "not valid YAML"),
        ("deployment:\n  replicas: two\n", "deployment.replicas: must be an integer"),
        ("ports:\n  other:\n    port: 8000\n", "entry points other and web both listen on 8000/TCP"),
        ("deploymnet:\n  replicas: 2\n", "deploymnet: unknown value"),
    ]
    for values, message in cases:
        with contextlib.suppress(NotFound):
            await env.configs.delete("traefik", "kube-system")
        await env.configs.create(config("traefik", values), "kube-system")

        async def failed(message: str = message) -> bool:
            cond = await env.condition("Failed")
            return cond.get("status") == "True" and message in cond.get("message", "")
        await env.eventually(failed)
        assert (await env.condition("Failed"))["reason"] == "InvalidValues"
        assert any(e["reason"] == "InvalidValues" and message in e["message"] for e in await env.events())
        assert (await env.status())["revision"] == 1
        dep = await env.deployment()
        assert dep["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]
    await env.configs.delete("traefik", "kube-system")

    async def healed() -> bool:
        return (await env.condition("Failed")).get("status") == "False"
    await env.eventually(healed)


async def test_values_pyk3s_does_not_act_on_are_reported(env: Env) -> None:
    await env.charts.create(helmchart("traefik", TRAEFIK_URL, "image:\n  repository: example.org/my/traefik\n"
                                                              "persistence:\n  enabled: true\n"
                                                              "logs:\n  access:\n    enabled: true\n    format: xml\n"
                                                              "additionalArguments: [--tracing.otlp=true]\n"),
                            "kube-system")
    await env.start()
    status = await env.eventually(lambda: _has(env, "ignoredValues"))
    keys = {i["key"]: i["reason"] for i in status["ignoredValues"]}
    assert "image.repository" in keys and "persistence.enabled" in keys
    # access logs are honoured, an access-log format the ingress does not know is not
    assert "logs.access.enabled" not in keys and "--accesslog.format=xml" in keys["logs.access.format"]
    assert "additionalArguments[0]" in keys
    dep = await env.deployment()
    assert dep["spec"]["template"]["spec"]["containers"][0]["image"].startswith("rancher/mirrored-library-traefik:")
    assert (await env.condition("ValuesIgnored"))["status"] == "True"
    assert (await env.condition("Failed"))["status"] == "False"
    ignored = [e for e in await env.events() if e["reason"] == "ValuesIgnored"]
    assert ignored and ignored[0]["type"] == "Warning" and "persistence.enabled" in ignored[0]["message"]


async def test_other_charts_are_refused_without_installing_anything(env: Env) -> None:
    await env.charts.create(helmchart("grafana", "grafana", repo="https://grafana.github.io/helm-charts",
                                      version="8.0.0"), "kube-system")
    await env.start()

    async def refused() -> dict[str, Any] | None:
        cond = await env.condition("Failed", "grafana")
        return cond if cond.get("status") == "True" else None
    cond = await env.eventually(refused)
    assert cond["reason"] == "UnsupportedChart"
    assert "traefik 37.1.1+up37.1.0" in cond["message"] and "traefik-crd" in cond["message"]
    assert "'grafana'" in cond["message"]
    events = await env.events("grafana")
    assert any(e["reason"] == "UnsupportedChart" and e["type"] == "Warning" for e in events)
    assert await env.releases("grafana") == []
    await env.charts.delete("grafana", "kube-system")
    await env.eventually(lambda: _chart_gone(env, "grafana"))


async def _chart_gone(env: Env, name: str) -> bool:
    return await env.get("helm.cattle.io/v1", "helmcharts", name) is None


async def test_deleting_the_chart_uninstalls_everything(env: Env) -> None:
    await env.charts.create(helmchart("traefik-crd", CRD_URL), "kube-system")
    await env.charts.create(helmchart("traefik", TRAEFIK_URL, "ingressRoute:\n  dashboard:\n    enabled: true\n"),
                            "kube-system")
    await env.start()
    await env.eventually(lambda: env.get("traefik.io/v1alpha1", "ingressroutes", "traefik-dashboard"))
    await env.charts.delete("traefik", "kube-system")
    await env.charts.delete("traefik-crd", "kube-system")
    await env.eventually(lambda: _chart_gone(env, "traefik"))
    await env.eventually(lambda: _chart_gone(env, "traefik-crd"))
    assert await env.deployment() is None
    assert await env.get("v1", "services", "traefik") is None
    assert await env.get("networking.k8s.io/v1", "ingressclasses", "traefik", None) is None
    assert await env.get("apiextensions.k8s.io/v1", "customresourcedefinitions", "ingressroutes.traefik.io",
                         None) is None
    assert await env.releases() == [] and await env.releases("traefik-crd") == []


async def test_an_object_of_someone_else_stops_the_install(env: Env) -> None:
    await env.client.resource("v1", "serviceaccounts").create(
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "traefik", "namespace": "kube-system"}},
        "kube-system")
    await env.charts.create(helmchart("traefik", TRAEFIK_URL), "kube-system")
    await env.start()

    async def failed() -> dict[str, Any] | None:
        cond = await env.condition("Failed")
        return cond if cond.get("reason") == "ApplyFailed" else None
    cond = await env.eventually(failed)
    assert 'ServiceAccount "traefik" in namespace "kube-system" exists and cannot be imported' in cond["message"]
    assert await env.deployment() is None  # nothing half-installed
    chart = await env.charts.get("traefik", "kube-system")
    chart["spec"]["takeOwnership"] = True
    await env.charts.update(chart, "kube-system")
    await env.eventually(env.deployment)


async def test_hand_over_from_the_plain_manifest(env: Env, tmp_path: Path) -> None:
    """Objects the old plain traefik.yaml applied (Addon traefik) move into the releases, same Service."""
    from pyk3s.controllers.common.settings import ControllerSettings, DeploySettings
    from pyk3s.controllers.deploy.controller import DeployController

    mdir = tmp_path / "server" / "manifests"
    mdir.mkdir(parents=True)
    old = (Path(__file__).parents[3] / "support" / "plain_traefik.yaml").read_text()
    (mdir / "traefik.yaml").write_text(old)
    deploy = DeployController(env.client, ControllerSettings(
        deploy=DeploySettings(manifests_dir=mdir, server_dir=mdir.parent)))
    assert await deploy.run_pass(forced=True)
    svc = await env.get("v1", "services", "traefik")
    cluster_ip, uid = svc["spec"]["clusterIP"], svc["metadata"]["uid"]
    # the new packaged file replaces the old one (a restart stages it), then the hand-over runs
    (mdir / "traefik.yaml").write_bytes(packaged_files()["traefik.yaml"])
    moved = await hand_over(env.client, mdir, ["traefik.yaml"])
    assert "Service kube-system/traefik" in moved and "Deployment kube-system/traefik" in moved
    assert "CustomResourceDefinition ingressroutes.traefik.io" in moved
    assert await deploy.run_pass(forced=True)
    await env.start()
    await env.eventually(lambda: _revision(env, 1))

    async def upgraded() -> dict[str, Any] | None:
        dep = await env.deployment()
        return dep if dep and dep["metadata"]["labels"].get("helm.sh/chart") == "traefik-37.1.1_up37.1.0" else None
    await env.eventually(upgraded)
    svc = await env.get("v1", "services", "traefik")
    assert svc["spec"]["clusterIP"] == cluster_ip and svc["metadata"]["uid"] == uid
    crd = await env.get("apiextensions.k8s.io/v1", "customresourcedefinitions", "middlewares.traefik.containo.us", None)
    assert crd["metadata"]["annotations"]["meta.helm.sh/release-name"] == "traefik-crd"
    assert "objectset.rio.cattle.io/hash" not in crd["metadata"].get("labels", {})
    deployments = (await env.client.resource("apps/v1", "deployments").list("kube-system"))["items"]
    assert [d["metadata"]["name"] for d in deployments] == ["traefik"]
