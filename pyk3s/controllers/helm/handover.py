"""Upgrading a packaged manifest in place: objects it applied directly move into the release that now renders them.

Earlier pyk3s releases shipped ``traefik.yaml`` as plain objects (Deployment, Service, RBAC, CRDs) applied
by the deploy controller under Addon ``traefik``. Now the same file holds HelmCharts. Left alone, the
deploy controller would prune the old objects (the file no longer has them) while the helm controller
creates them again: a Service deleted and re-created gets a new address, a deleted CRD takes every
IngressRoute with it. So at start, before the deploy controller's first pass, every object that
(a) carries the owner hash of the Addon of a freshly staged file and (b) is rendered, under the same
kind, namespace and name, by a packaged HelmChart of that file, is handed over: the deploy
controller's object-set label and annotations are removed and Helm's ownership marks added. The
helm controller then upgrades it in place (same Service address, no second Deployment, no port
taken twice) and the deploy controller no longer sees it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from pyk3s.client import ApiError, Client, NotFound

from ..deploy.objectset import APPLIED, HASH, ID, OWNER_GVK_KEY, OWNER_NAME, OWNER_NS, owner_hash
from ..deploy.parse import ManifestError, parse_manifest
from ..deploy.scan import addon_name
from .apply import MANAGED_BY, RELEASE_NAME, RELEASE_NAMESPACE, ident_of, owned
from .chart import Release, Rendered, RenderError
from .charts import identify
from .sources import user_values
from .values import ValuesError

__all__ = ["hand_over", "handover_patch"]

log = logging.getLogger("pyk3s.helm")


def handover_patch(release: str, namespace: str) -> dict[str, Any]:
    """The merge patch that moves an object from an Addon's object set into a Helm release."""
    return {"metadata": {
        "labels": {HASH: None, MANAGED_BY: "Helm"},
        "annotations": {ID: None, OWNER_GVK_KEY: None, OWNER_NAME: None, OWNER_NS: None, APPLIED: None,
                        RELEASE_NAME: release, RELEASE_NAMESPACE: namespace},
    }}


async def _config(client: Client, ns: str, name: str) -> Mapping[str, Any] | None:
    try:
        return await client.resource("helm.cattle.io/v1", "helmchartconfigs").get_or_none(name, ns)
    except ApiError:
        return None


async def _render(client: Client, chart: dict[str, Any]) -> tuple[Release, Rendered] | None:
    spec = chart.get("spec") or {}
    packaged = identify(spec)
    if packaged is None:
        return None
    ns = chart["metadata"].get("namespace") or "default"
    chart["metadata"]["namespace"] = ns
    release = Release(chart["metadata"]["name"], spec.get("targetNamespace") or ns)

    async def read(sns: str, sname: str) -> Mapping[str, Any] | None:
        return await client.resource("v1", "secrets").get_or_none(sname, sns)

    try:
        values = await user_values(chart, await _config(client, ns, release.name), read)
        return release, packaged.render(values, release)
    except (ValuesError, RenderError):
        try:
            return release, packaged.render({}, release)
        except RenderError:
            return None


async def hand_over(client: Client, manifests_dir: Path, files: Iterable[str],
                    addon_namespace: str = "kube-system") -> list[str]:
    """Hand objects of the staged ``files`` (relative names) to their HelmCharts' releases; returns what moved."""
    moved: list[str] = []
    for rel in files:
        path = manifests_dir / rel
        try:
            docs = parse_manifest(path.read_bytes(), path.name)
        except (OSError, ManifestError, UnicodeDecodeError):
            continue
        charts = [d for d in docs if d.get("kind") == "HelmChart" and str(d.get("apiVersion")) == "helm.cattle.io/v1"]
        if not charts:
            continue
        addon_hash = owner_hash(addon_name(path.name), addon_namespace)
        for chart in charts:
            found = await _render(client, chart)
            if found is None:
                continue
            release, rendered = found
            for manifest in rendered.objects:
                api_version, kind, ns, name = ident_of(manifest.obj)
                try:
                    res = await client.resource_for_kind(api_version, kind)
                    _plural, namespaced = await client.discover(api_version, kind)
                    where = (ns or release.namespace) if namespaced else None
                    live = await res.get_or_none(name, where)
                except NotFound:
                    continue  # a kind not served yet: nothing of it exists to hand over
                if live is None or ((live.get("metadata") or {}).get("labels") or {}).get(HASH) != addon_hash:
                    continue
                if owned(live, release.name, release.namespace):
                    continue
                try:
                    await res.patch(name, handover_patch(release.name, release.namespace), where,
                                    field_manager="helm-controller")
                except ApiError as err:
                    log.warning("helm: handing %s %s over to release %s failed: %s", kind, name, release.name, err)
                    continue
                what = f"{kind} {where + '/' if where else ''}{name}"
                log.info("helm: %s moves from Addon %s to Helm release %s/%s", what, addon_name(path.name),
                         release.namespace, release.name)
                moved.append(what)
    return moved
