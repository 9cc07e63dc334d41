"""The deploy controller: every file in ``<data-dir>/server/manifests`` applied like `kubectl apply`.

Passes (specs/k3s.md 3.2): the first pass is forced; after that a pass runs on file events and at
least every ``rescan_interval`` seconds. On a non-forced pass a file is applied only if its mtime and
then its SHA-256 changed. A pass with a failure makes the next one forced. A broken file is reported
(Warning event on its Addon, a log line, the ``pyk3s.io/last-error`` annotation) and retried; it never
stops the other files, and objects it applied before stay as they were.

``--disable`` (issue: the guide's recipe): a disabled component's file whose content is what pyk3s
staged is uninstalled (objects deleted, file removed, Addon deleted); a file with that name whose
content differs is the user's copy and is applied like any other file.

As every controller it is a :class:`~pyk3s.controllers.common.loop.Loop`, with one key: a pass over the
whole directory, queued by a file event and again ``rescan_interval`` seconds after each pass.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pyk3s.client import AlreadyExists, ApiError, Client, NotFound
from pyk3s.client.controller import Result
from pyk3s.controllers.common.loop import Loop
from pyk3s.controllers.common.settings import ControllerSettings
from pyk3s.manifests.stage import forget_staged, staged_checksums

from .objectset import APPLIED, HASH, decode_applied, decorate, gvk_string, owner_hash, three_way_patch
from .parse import ManifestError, parse_documents, parse_manifest
from .scan import ManifestFile, scan

__all__ = ["DeployController", "GVKS_ANNOTATION", "PASS_KEY"]

log = logging.getLogger("pyk3s.deploy")

GVKS_ANNOTATION = "addon.k3s.cattle.io/gvks"
LAST_RESULT = "pyk3s.io/last-result"
LAST_ERROR = "pyk3s.io/last-error"
LAST_TIME = "pyk3s.io/last-applied-time"
COMPONENT = "deploy"
PASS_KEY = "manifests"  # the loop's only key: one pass over the whole directory


class ApplyFailed(Exception):
    pass


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse_gvk(value: str) -> tuple[str, str] | None:
    """"apps/v1, Kind=Deployment" -> ("apps/v1", "Deployment"); "/v1, Kind=ConfigMap" -> ("v1", ...)."""
    head, sep, kind = value.strip().partition(", Kind=")
    if not sep or not kind:
        return None
    return head.lstrip("/"), kind


class DeployController(Loop):
    name = "deploy"

    def __init__(self, client: Client, settings: ControllerSettings | None = None) -> None:
        super().__init__(client, settings)
        if self.settings.deploy is None:
            raise ValueError("controllers/deploy: the settings name no manifests directory (ControllerSettings.deploy)")
        self.s = self.settings.deploy
        self.addons = client.resource("k3s.cattle.io/v1", "addons")
        self._mtimes: dict[Path, float] = {}
        self._forced = True  # the first pass, and the one after a failed pass, apply every file
        self._watcher: asyncio.Task[None] | None = None

    # -- loop -------------------------------------------------------------------------------------
    async def start(self) -> None:
        await super().start()
        self._watcher = asyncio.create_task(self._watch_files(), name="deploy file watcher")
        self.controller.enqueue(PASS_KEY)

    async def stop(self) -> None:
        if self._watcher is not None:
            self._watcher.cancel()
            self._watcher = None
        await super().stop()

    async def reconcile(self, key: str) -> Result:
        ok = await self.run_pass(forced=self._forced)
        self._forced = not ok
        return Result.after(self.s.rescan_interval)

    async def _watch_files(self) -> None:
        from watchfiles import awatch

        self.s.manifests_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        try:
            async for _changes in awatch(self.s.manifests_dir, debounce=200, recursive=True):
                self.controller.enqueue(PASS_KEY)
        except Exception as err:  # the periodic rescan still works without file events
            log.warning("deploy: watching %s failed (%s); relying on the periodic rescan", self.s.manifests_dir, err)

    async def run_pass(self, *, forced: bool) -> bool:
        ok = True
        for mf in scan(self.s.manifests_dir, self.s.disable):
            try:
                if mf.action == "skip":
                    continue
                if mf.action == "disabled" and self._is_staged_copy(mf):
                    await self.uninstall(mf)
                else:
                    await self.deploy(mf, forced=forced)
            except asyncio.CancelledError:
                raise
            except Exception as err:
                ok = False
                log.error("Failed to process config: %s: %s", mf.path, err)
        return ok

    def _is_staged_copy(self, mf: ManifestFile) -> bool:
        staged = staged_checksums(self.s.server_dir).get(mf.rel)
        if staged is None:
            return False
        try:
            return hashlib.sha256(mf.path.read_bytes()).hexdigest() == staged
        except OSError:
            return False

    # -- Addon bookkeeping ------------------------------------------------------------------------
    async def _addon(self, mf: ManifestFile) -> dict[str, Any]:
        try:
            addon = await self.addons.get(mf.addon, self.s.namespace)
        except NotFound:
            body = {
                "apiVersion": "k3s.cattle.io/v1",
                "kind": "Addon",
                "metadata": {"name": mf.addon, "namespace": self.s.namespace},
                "spec": {"source": str(mf.path)},
            }
            try:
                return await self.addons.create(body, field_manager=COMPONENT)
            except AlreadyExists:
                addon = await self.addons.get(mf.addon, self.s.namespace)
        if (addon.get("spec") or {}).get("source") != str(mf.path):
            addon = await self.addons.patch(
                mf.addon, {"spec": {"source": str(mf.path)}}, self.s.namespace, field_manager=COMPONENT
            )
        return addon

    async def _event(self, addon: dict[str, Any], type_: str, reason: str, message: str) -> None:
        addon = {**addon, "apiVersion": "k3s.cattle.io/v1", "kind": "Addon"}
        await self.client.record_event(addon, type=type_, reason=reason, message=message, component=COMPONENT)

    async def _record(self, addon: dict[str, Any], *, result: str, error: str = "", **extra: Any) -> None:
        ann = {LAST_RESULT: result, LAST_ERROR: error or None, LAST_TIME: _now()}
        ann.update(extra.pop("annotations", {}))
        patch: dict[str, Any] = {"metadata": {"annotations": ann}}
        if extra.get("checksum"):
            patch["spec"] = {"checksum": extra["checksum"]}
        try:
            await self.addons.patch(addon["metadata"]["name"], patch, self.s.namespace, field_manager=COMPONENT)
        except ApiError as err:
            log.warning("deploy: recording the result on Addon %s failed: %s", addon["metadata"]["name"], err)

    # -- deploy -----------------------------------------------------------------------------------
    async def deploy(self, mf: ManifestFile, *, forced: bool) -> None:
        try:
            mtime: float | None = mf.path.stat().st_mtime
        except OSError:
            if not mf.path.is_symlink():
                return  # removed between scan and now
            mtime = None  # a dangling link: reading it below reports why
        if not forced and mtime is not None and self._mtimes.get(mf.path) == mtime and mtime != 0:
            return
        addon = await self._addon(mf)
        try:
            raw = mf.path.read_bytes()
        except OSError as err:
            msg = f'Read manifest at "{mf.path}" failed: {err.strerror or err}'
            await self._event(addon, "Warning", "ReadManifestFailed", msg)
            await self._record(addon, result="ReadManifestFailed", error=msg)
            raise ApplyFailed(msg) from None
        checksum = hashlib.sha256(raw).hexdigest()
        if not forced and (addon.get("spec") or {}).get("checksum") == checksum:
            if mtime is not None:
                self._mtimes[mf.path] = mtime
            return
        await self._event(addon, "Normal", "ApplyingManifest", f'Applying manifest at "{mf.path}"')
        try:
            documents = parse_documents(raw, mf.path.name)
        except (ManifestError, UnicodeDecodeError) as err:
            msg = f'Parse manifest at "{mf.path}" failed: {err}'
            await self._event(addon, "Warning", "ParseManifestFailed", msg)
            await self._record(addon, result="ParseManifestFailed", error=msg)
            raise ApplyFailed(msg) from None
        previous = self._gvks_of(addon)
        errors = await self.apply_set(mf.addon, documents, previous)
        gvks = sorted({gvk_string(o) for _index, o in documents})
        if errors:
            msg = f'Applying manifest at "{mf.path}" failed: ' + "; ".join(errors)
            await self._event(addon, "Warning", "ApplyManifestFailed", msg)
            await self._record(addon, result="ApplyManifestFailed", error=msg)
            raise ApplyFailed(msg)
        await self._record(
            addon, result="AppliedManifest", checksum=checksum, annotations={GVKS_ANNOTATION: ";".join(gvks)}
        )
        await self._event(addon, "Normal", "AppliedManifest", f'Applied manifest at "{mf.path}"')
        if mtime is not None:
            self._mtimes[mf.path] = mtime

    @staticmethod
    def _gvks_of(addon: dict[str, Any]) -> list[tuple[str, str]]:
        value = ((addon.get("metadata") or {}).get("annotations") or {}).get(GVKS_ANNOTATION, "")
        out = [g for g in (_parse_gvk(v) for v in value.split(";") if v.strip()) if g]
        return sorted(set(out))

    async def apply_set(
        self, addon: str, documents: list[tuple[int, dict[str, Any]]], previous: list[tuple[str, str]]
    ) -> list[str]:
        """Create or three-way-patch every object, then prune what the set no longer has.

        Returns error strings (one per failed object); pruning is skipped if anything failed, so a
        half-applied file never deletes what it still owns.
        """
        errors: list[str] = []
        wanted: set[tuple[str, str, str, str]] = set()
        for index, obj in documents:
            api_version, kind = obj["apiVersion"], obj["kind"]
            name = obj["metadata"]["name"]
            where = f"{obj['metadata'].get('namespace')}/{name}" if obj["metadata"].get("namespace") else name
            try:
                res = await self.client.resource_for_kind(api_version, kind)
                _plural, namespaced = await self.client.discover(api_version, kind)
                ns = (obj["metadata"].get("namespace") or "default") if namespaced else None
                desired = decorate(obj, addon, self.s.namespace)
                if ns:
                    desired["metadata"]["namespace"] = ns
                else:
                    desired["metadata"].pop("namespace", None)
                wanted.add((api_version, kind, ns or "", name))
                await self._apply_one(res, desired, ns)
            except ApiError as err:
                errors.append(f"document {index} ({kind} {where}): {err.message}")
        if errors:
            return errors
        kinds = {(o["apiVersion"], o["kind"]) for _index, o in documents} | set(previous)
        for api_version, kind in sorted(kinds):
            try:
                await self._prune(addon, api_version, kind, wanted)
            except ApiError as err:
                if err.status != 404:
                    errors.append(f"pruning {kind}: {err.message}")
        return errors

    async def _apply_one(self, res: Any, desired: dict[str, Any], ns: str | None) -> None:
        name = desired["metadata"]["name"]
        live = await res.get_or_none(name, ns)
        if live is None:
            try:
                await res.create(desired, ns, field_manager=COMPONENT)
                return
            except AlreadyExists:
                live = await res.get(name, ns)
        original = decode_applied(((live.get("metadata") or {}).get("annotations") or {}).get(APPLIED))
        patch = three_way_patch(original, desired, live)
        if patch:
            await res.patch(name, patch, ns, patch_type="merge", field_manager=COMPONENT)

    async def _prune(self, addon: str, api_version: str, kind: str, wanted: set[tuple[str, str, str, str]]) -> None:
        try:
            res = await self.client.resource_for_kind(api_version, kind)
        except NotFound:
            return  # a GVK the server no longer serves (a deleted CRD): nothing to prune
        listing = await res.list(label_selector=f"{HASH}={owner_hash(addon, self.s.namespace)}")
        for item in listing.get("items") or []:
            meta = item.get("metadata") or {}
            key = (api_version, kind, meta.get("namespace") or "", meta.get("name", ""))
            if key not in wanted:
                log.info("deploy: pruning %s %s/%s of Addon %s", kind, key[2], key[3], addon)
                try:
                    await res.delete(key[3], meta.get("namespace") or None, propagation_policy="Background")
                except NotFound:
                    pass

    # -- uninstall (--disable of pyk3s's own copy) -------------------------------------------------
    async def uninstall(self, mf: ManifestFile) -> None:
        addon = await self._addon(mf)
        kinds = set(self._gvks_of(addon))
        try:
            kinds |= {(o["apiVersion"], o["kind"]) for o in parse_manifest(mf.path.read_bytes(), mf.path.name)}
        except (OSError, ManifestError, UnicodeDecodeError) as err:
            await self._event(addon, "Warning", "ParseManifestFailed", f'Parse manifest at "{mf.path}" failed: {err}')
        # Custom resources first, their CRDs last, so nothing is left dangling.
        order = sorted(kinds, key=lambda gk: (gk[1] == "CustomResourceDefinition", gk[1] == "Namespace", gk))
        for api_version, kind in order:
            try:
                await self._prune(mf.addon, api_version, kind, set())
            except ApiError as err:
                if err.status != 404:
                    raise
        await self._event(addon, "Normal", "DeletingManifest", f'Deleting manifest at "{mf.path}"')
        log.info("deploy: %s is disabled; removed its objects and the file", mf.path)
        if self._is_staged_copy(mf):  # a user's copy written meanwhile is kept (and applied next pass)
            mf.path.unlink(missing_ok=True)
        # Uninstalled once: a file under this name from now on is the user's copy (the guide's recipe
        # copies the saved file back unchanged, then edits it), until a start stages it again.
        forget_staged(self.s.server_dir, mf.rel)
        try:
            await self.addons.delete(mf.addon, self.s.namespace)
        except NotFound:
            pass
