"""The helm controller: HelmCharts of pyk3s's packaged charts installed natively, others refused clearly.

Per HelmChart (key ``namespace/name``; its HelmChartConfig of the same name maps to the same key):

1. a HelmChart with ``helmcharts.helm.cattle.io/unmanaged``, or claimed by another controller
   (``helmcharts.cattle.io/managed-by``), is left alone; an unclaimed one is claimed for
   ``helm-controller`` and gets finalizer ``wrangler.cattle.io/on-helm-chart-remove`` (K3s's names);
2. a chart other than the packaged ones (:data:`CHARTS`) gets ``Failed=True`` (UnsupportedChart) and a
   Warning event naming the charts pyk3s renders; nothing is installed;
3. the values (HelmChart, its Secrets, the HelmChartConfig, ``set``) are merged and the chart
   rendered; bad values give ``Failed=True`` (InvalidValues) and a Warning event naming the key, and
   the installed revision keeps serving;
4. the objects are applied (:mod:`.apply`), those the new render dropped are deleted, and a new release
   revision is recorded when the manifest or the values changed (``ApplyRelease`` event);
5. values pyk3s renders but does not act on are listed in the status and a ``ValuesIgnored`` event;
6. deleting the HelmChart uninstalls the release (objects and release records) before the
   finalizer is removed (``RemoveRelease`` event).

Failures of the API are retried with backoff, unless ``failurePolicy: abort`` (from the HelmChart or
its HelmChartConfig) asks to wait for a change.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from pyk3s.client import ApiError, Conflict, NotFound
from pyk3s.client.controller import Result

from ..common.loop import Loop
from ..common.settings import ControllerSettings
from ..objects import is_deleting
from .apply import Applier, ApplyError, describe
from .chart import PackagedChart, Release, RenderError
from .charts import describe_charts, identify
from .crds import ensure_crds
from .release import decode_release, manifest_objects, manifest_text, release_secret, secret_name
from .sources import user_values
from .status import ChartOutcome, build_status, ignored_summary, same_status
from .values import ValuesError

__all__ = ["FINALIZER", "HelmController", "MANAGED_BY"]

log = logging.getLogger("pyk3s.helm")

FINALIZER = "wrangler.cattle.io/on-helm-chart-remove"
MANAGED_BY = "helmcharts.cattle.io/managed-by"
UNMANAGED = "helmcharts.helm.cattle.io/unmanaged"
CONTROLLER_NAME = "helm-controller"
COMPONENT = "helm-controller"
HISTORY_MAX = 10
SECRETS_RESYNC = 30.0


class RetryLater(Exception):
    """The reconcile failed in a way worth retrying (an API error); the status already says why."""


class HelmController(Loop):
    name = "helm"

    def __init__(self, client: Any, settings: ControllerSettings | None = None) -> None:
        super().__init__(client, settings)
        self.charts = self.informer("helm.cattle.io/v1", "helmcharts")
        self.configs = self.informer("helm.cattle.io/v1", "helmchartconfigs")
        self.controller.watch(self.charts)
        self.controller.watch(self.configs)
        self.chart_api = client.resource("helm.cattle.io/v1", "helmcharts")
        self.secret_api = client.resource("v1", "secrets")
        self.namespace_api = client.resource("v1", "namespaces")
        self._events: dict[tuple[str, str], str] = {}

    async def start(self) -> None:
        await ensure_crds(self.client)
        await super().start()

    # -- reconcile ----------------------------------------------------------------------------------
    async def reconcile(self, key: str) -> Result | None:
        chart = self.charts.get(key)
        if chart is None:
            self._events = {k: v for k, v in self._events.items() if k[0] != key}
            return None
        meta = chart.get("metadata") or {}
        spec = chart.get("spec") or {}
        if not spec.get("chart") and not spec.get("chartContent"):
            return None
        annotations = meta.get("annotations") or {}
        if UNMANAGED in annotations or annotations.get(MANAGED_BY, CONTROLLER_NAME) != CONTROLLER_NAME:
            return None
        if is_deleting(chart):
            await self._remove(chart)
            return None
        if MANAGED_BY not in annotations or FINALIZER not in (meta.get("finalizers") or []):
            await self._claim(chart)
            return None  # the update comes back through the informer
        outcome, retry = await self._sync(chart)
        await self._write_status(chart, outcome)
        if retry:
            raise RetryLater(outcome.failed_message)
        uses_secrets = bool(spec.get("valuesSecrets")) or bool(
            ((self.configs.get(key) or {}).get("spec") or {}).get("valuesSecrets"))
        return Result.after(SECRETS_RESYNC) if uses_secrets else None

    async def _claim(self, chart: dict[str, Any]) -> None:
        meta = chart["metadata"]
        finalizers = list(meta.get("finalizers") or [])
        if FINALIZER not in finalizers:
            finalizers.append(FINALIZER)
        patch = {"metadata": {"resourceVersion": meta.get("resourceVersion"), "finalizers": finalizers,
                              "annotations": {MANAGED_BY: CONTROLLER_NAME}}}
        await self.chart_api.patch(meta["name"], patch, meta["namespace"], field_manager=COMPONENT)

    # -- install / upgrade --------------------------------------------------------------------------
    def _failure_policy(self, chart: Mapping[str, Any], config: Mapping[str, Any] | None) -> str:
        policy = (chart.get("spec") or {}).get("failurePolicy") or "reinstall"
        return ((config or {}).get("spec") or {}).get("failurePolicy") or policy

    async def _read_secret(self, ns: str, name: str) -> Mapping[str, Any] | None:
        return await self.secret_api.get_or_none(name, ns)

    async def _sync(self, chart: dict[str, Any]) -> tuple[ChartOutcome, bool]:
        meta, spec = chart["metadata"], chart.get("spec") or {}
        ns, name = meta["namespace"], meta["name"]
        config = self.configs.get(f"{ns}/{name}")
        if spec.get("helmVersion") not in (None, "", "v3"):
            await self._event(chart, "Warning", "UnsupportedVersion",
                              f"Unsupported Helm version {spec['helmVersion']}: only v3 charts are supported")
            return ChartOutcome("Unsupported version", "Only Helm v3 charts are supported", native=False), False
        packaged = identify(spec)
        if packaged is None:
            message = (f"pyk3s installs only the charts it ships, rendering them itself: {describe_charts()}; "
                       f"chart {spec.get('chart') or '(chartContent)'!r}"
                       f"{' from repo ' + repr(spec['repo']) if spec.get('repo') else ''}"
                       f"{' version ' + repr(spec['version']) if spec.get('version') else ''} is not installed")
            await self._event(chart, "Warning", "UnsupportedChart", message)
            return ChartOutcome("UnsupportedChart", message, native=False), False
        target = spec.get("targetNamespace") or ns
        release = Release(name, target)
        history = await self._history(release)
        current = history[-1] if history else None
        installed = self._installed(current, packaged)
        abort = self._failure_policy(chart, config) == "abort"
        try:
            values = await user_values(chart, config, self._read_secret)
            rendered = packaged.render(values, Release(name, target, (current or {}).get("version", 0) + 1,
                                                       current is None))
        except ValuesError as err:
            await self._event(chart, "Warning", "InvalidValues", str(err))
            return replace(installed, failed_reason="InvalidValues", failed_message=str(err)), False
        except RenderError as err:
            message = f"chart {packaged.name} {packaged.version}: {err}"
            await self._event(chart, "Warning", "InvalidValues", message)
            return replace(installed, failed_reason="InvalidValues", failed_message=message), False
        ignored = rendered.ignored
        if ignored:
            await self._event(chart, "Warning", "ValuesIgnored",
                              f"values pyk3s renders but does not act on: {ignored_summary(ignored)}")
        try:
            if spec.get("createNamespace"):
                await self._ensure_namespace(target)
            applier = Applier(self.client, name, target)
            desired = applier.desired(rendered.objects)
            await applier.check(desired, bool(spec.get("takeOwnership")))
            previous = manifest_objects((current or {}).get("manifest", "")) if current else []
            result = await applier.apply(desired, previous)
            manifest = manifest_text(rendered.objects)
            revision = await self._record(release, packaged, values, manifest, history)
        except (ApplyError, ApiError) as err:
            message = f"{err.message if isinstance(err, ApiError) else err}"
            await self._event(chart, "Warning", "ApplyFailed", f"applying release {target}/{name} failed: {message}")
            return replace(installed, failed_reason="ApplyFailed", failed_message=message,
                           ignored=tuple(ignored)), not abort
        if revision or result.changed:
            summary = (f"{len(result.created)} created, {len(result.updated)} updated, {len(result.deleted)} deleted"
                       if result.changed else "objects unchanged")
            what = f"revision {revision}" if revision else "the installed revision"
            await self._event(chart, "Normal", "ApplyRelease",
                              f"Applied chart {packaged.name}-{packaged.version} as release {target}/{name} "
                              f"{what}, rendered by pyk3s ({summary})")
        revision = revision or (current or {}).get("version", 0)
        objects = tuple(describe(o) for o in desired)
        return ChartOutcome(release=f"{target}/{name}", revision=revision, chart_version=packaged.version,
                       objects=objects, ignored=tuple(ignored)), False

    @staticmethod
    def _installed(current: Mapping[str, Any] | None, packaged: PackagedChart) -> ChartOutcome:
        """What still serves when a new render is refused: the installed revision."""
        if not current:
            return ChartOutcome(chart_version=packaged.version)
        objs = tuple(describe(o) for o in manifest_objects(current.get("manifest", "")))
        return ChartOutcome(release=f"{current.get('namespace')}/{current.get('name')}", revision=int(current["version"]),
                       chart_version=((current.get("chart") or {}).get("metadata") or {}).get("version", ""),
                       objects=objs)

    async def _ensure_namespace(self, name: str) -> None:
        if await self.namespace_api.get_or_none(name) is None:
            try:
                await self.namespace_api.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}},
                                                field_manager=COMPONENT)
            except ApiError as err:
                if err.status != 409:
                    raise

    # -- release records ----------------------------------------------------------------------------
    async def _history(self, release: Release) -> list[dict[str, Any]]:
        """The release's revisions, oldest first (records that cannot be read are skipped)."""
        listing = await self.secret_api.list(release.namespace, label_selector=f"owner=helm,name={release.name}")
        out = []
        for item in listing.get("items") or []:
            record = decode_release(item)
            if record is not None and isinstance(record.get("version"), int):
                out.append(record)
        return sorted(out, key=lambda r: r["version"])

    async def _record(self, release: Release, chart: PackagedChart, values: Mapping[str, Any], manifest: str,
                      history: list[dict[str, Any]]) -> int:
        """Write a new revision when the manifest or the values changed; returns it (0: nothing new)."""
        current = history[-1] if history else None
        if current and current.get("manifest") == manifest and current.get("config") == dict(values) and \
                (current.get("info") or {}).get("status") == "deployed":
            return 0
        revision = (current or {}).get("version", 0) + 1
        first = ((history[0].get("info") or {}).get("first_deployed", "")) if history else ""
        body = release_secret(name=release.name, namespace=release.namespace, revision=revision, status="deployed",
                              chart=chart, config=values, manifest=manifest, first_deployed=first,
                              description="Install complete" if current is None else "Upgrade complete")
        await self.secret_api.create(body, release.namespace, field_manager=COMPONENT)
        for old in history:
            if (old.get("info") or {}).get("status") == "deployed":
                old_body = release_secret(name=release.name, namespace=release.namespace, revision=old["version"],
                                          status="superseded", chart=chart, config=old.get("config") or {},
                                          manifest=old.get("manifest", ""), first_deployed=first,
                                          description=(old.get("info") or {}).get("description", ""))
                try:
                    await self.secret_api.patch(secret_name(release.name, old["version"]),
                                                {"metadata": {"labels": old_body["metadata"]["labels"]},
                                                 "data": old_body["data"]}, release.namespace,
                                                field_manager=COMPONENT)
                except NotFound:
                    pass
        for old in history[: max(0, len(history) + 1 - HISTORY_MAX)]:
            try:
                await self.secret_api.delete(secret_name(release.name, old["version"]), release.namespace)
            except NotFound:
                pass
        return revision

    # -- uninstall ----------------------------------------------------------------------------------
    async def _remove(self, chart: dict[str, Any]) -> None:
        meta = chart["metadata"]
        if FINALIZER not in (meta.get("finalizers") or []):
            return
        spec = chart.get("spec") or {}
        target = spec.get("targetNamespace") or meta["namespace"]
        release = Release(meta["name"], target)
        history = await self._history(release)
        removed: list[str] = []
        if history:
            objects = manifest_objects(history[-1].get("manifest", ""))
            try:
                removed = await Applier(self.client, release.name, target).delete(objects)
            except ApplyError as err:
                await self._event(chart, "Warning", "RemoveFailed", f"uninstalling release {target}/{release.name}: {err}")
                raise RetryLater(str(err)) from None
            for record in history:
                try:
                    await self.secret_api.delete(secret_name(release.name, record["version"]), target)
                except NotFound:
                    pass
            await self._event(chart, "Normal", "RemoveRelease",
                              f"Uninstalled release {target}/{release.name} ({len(removed)} objects removed)")
        finalizers = [f for f in meta.get("finalizers") or [] if f != FINALIZER]
        try:
            await self.chart_api.patch(meta["name"], {"metadata": {"resourceVersion": meta.get("resourceVersion"),
                                                                   "finalizers": finalizers or None}},
                                       meta["namespace"], field_manager=COMPONENT)
        except NotFound:
            pass
        except Conflict:
            raise RetryLater("HelmChart changed while uninstalling") from None

    # -- status and events --------------------------------------------------------------------------
    async def _write_status(self, chart: dict[str, Any], outcome: ChartOutcome) -> None:
        meta = chart["metadata"]
        wanted = build_status(outcome, f"{meta['name']} {outcome.chart_version}".strip())
        if same_status(chart.get("status"), wanted):
            return
        try:
            await self.chart_api.patch(meta["name"], {"status": wanted}, meta["namespace"], field_manager=COMPONENT,
                                       subresource="status")
        except NotFound:
            pass

    async def _event(self, chart: dict[str, Any], type_: str, reason: str, message: str) -> None:
        """Record an event on the HelmChart, once per distinct message (no repeats on every resync)."""
        key = (f"{chart['metadata']['namespace']}/{chart['metadata']['name']}", reason)
        if self._events.get(key) == message:
            return
        self._events[key] = message
        log.log(logging.WARNING if type_ == "Warning" else logging.INFO, "helm: HelmChart %s: %s: %s", key[0],
                reason, message)
        ref = {**chart, "apiVersion": "helm.cattle.io/v1", "kind": "HelmChart"}
        await self.client.record_event(ref, type=type_, reason=reason, message=message, component=COMPONENT)

