"""`pyk3s manifests status`: each file in the manifests directory, its Addon, checksum, last result and
last error, so nobody has to dig through events to learn why a file did not apply; then each HelmChart
with its release, the objects it rendered and the values pyk3s does not act on."""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import sys
from pathlib import Path
from typing import Any

from pyk3s.k3s.paths import default_data_dir, default_kubeconfig_path

from .manifests_helm import helm_lines, helm_rows

__all__ = ["main", "status_rows"]


async def _addons(kubeconfig: str) -> tuple[dict[str, dict[str, Any]], list[dict[str, Any]]]:
    """The Addons, and the HelmCharts (none when the kind is not served)."""
    from pyk3s.client import Client, NotFound

    async with Client.from_kubeconfig(kubeconfig) as client:
        listing = await client.resource("k3s.cattle.io/v1", "addons").list("kube-system")
        try:
            charts = (await client.resource("helm.cattle.io/v1", "helmcharts").list()).get("items") or []
        except NotFound:
            charts = []
    return {a["metadata"]["name"]: a for a in listing.get("items") or []}, charts


def status_rows(manifests_dir: Path, addons: dict[str, dict[str, Any]], disable: frozenset[str],
                addons_known: bool = True) -> list[dict[str, str]]:
    from pyk3s.controllers.deploy.controller import LAST_ERROR, LAST_RESULT, LAST_TIME
    from pyk3s.controllers.deploy.scan import scan
    from pyk3s.manifests.stage import staged_checksums

    staged = staged_checksums(manifests_dir.parent)
    rows = []
    for mf in scan(manifests_dir, disable):
        try:
            checksum = hashlib.sha256(mf.path.read_bytes()).hexdigest()
        except OSError as err:
            checksum = f"unreadable: {err.strerror}"
        addon = addons.get(mf.addon) or {}
        ann = (addon.get("metadata") or {}).get("annotations") or {}
        applied = (addon.get("spec") or {}).get("checksum", "")
        if mf.action == "skip":
            result = "Skipped (.skip file)"
        elif mf.action == "disabled" and staged.get(mf.rel) == checksum:
            result = "Disabled (pyk3s's copy: uninstalled by the next pass)"
        elif not addon:
            result = "Pending (no Addon yet)" if addons_known else "unknown (Addons could not be read)"
        else:
            result = ann.get(LAST_RESULT, "")
            if result == "AppliedManifest" and applied != checksum:
                result = "AppliedManifest (file changed since; next pass applies it)"
        rows.append({
            "FILE": mf.rel,
            "ADDON": f"kube-system/{mf.addon}",
            "CHECKSUM": checksum[:12],
            "RESULT": result,
            "WHEN": ann.get(LAST_TIME, ""),
            "LAST ERROR": ann.get(LAST_ERROR, ""),
        })
    rows.extend(_orphan_rows(manifests_dir, addons, {mf.addon for mf in scan(manifests_dir, disable)}))
    return rows


def _orphan_rows(manifests_dir: Path, addons: dict[str, dict[str, Any]], seen: set[str]) -> list[dict[str, str]]:
    """Addons whose file left the directory (deleted or renamed): their objects stay in the cluster."""
    from pyk3s.controllers.deploy.controller import LAST_TIME

    root = manifests_dir.resolve()
    rows = []
    for name, addon in sorted(addons.items()):
        source = str((addon.get("spec") or {}).get("source") or "")
        if name in seen or not source:
            continue
        path = Path(source)
        try:
            rel = path.resolve().relative_to(root).as_posix()
        except ValueError:
            continue  # an Addon created by someone else, not from this directory
        if path.exists():
            continue
        ann = (addon.get("metadata") or {}).get("annotations") or {}
        rows.append({
            "FILE": f"{rel} (gone)",
            "ADDON": f"kube-system/{name}",
            "CHECKSUM": str((addon.get("spec") or {}).get("checksum", ""))[:12],
            "RESULT": "SourceRemoved (objects left in the cluster)",
            "WHEN": ann.get(LAST_TIME, ""),
            "LAST ERROR": "",
        })
    return rows


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="pyk3s manifests", description=__doc__)
    sub = p.add_subparsers(dest="cmd", required=True)
    st = sub.add_parser("status", help="show each manifest file and what happened to it")
    st.add_argument("--data-dir", "-d", default=default_data_dir())
    st.add_argument("--kubeconfig", default=None)
    st.add_argument("--disable", action="append", default=[], help="same values as the server's --disable")
    args = p.parse_args(argv)
    mdir = Path(args.data_dir) / "server" / "manifests"
    if not mdir.is_dir():
        print(f"pyk3s manifests: {mdir} does not exist (is --data-dir right?)", file=sys.stderr)
        return 1
    kubeconfig = args.kubeconfig or os.environ.get("KUBECONFIG", "").split(os.pathsep)[0] or default_kubeconfig_path()
    unreadable = False
    charts: list[dict[str, Any]] = []
    try:
        addons, charts = asyncio.run(_addons(kubeconfig))
    except Exception as err:
        print(f"pyk3s manifests: cannot read Addons through {kubeconfig}: {err}; showing files only",
              file=sys.stderr)
        addons, unreadable = {}, True
    disable = frozenset(x.strip() for v in args.disable for x in v.split(",") if x.strip())
    rows = status_rows(mdir, addons, disable, addons_known=not unreadable)
    if not rows:
        print(f"no manifests in {mdir}")
        return 0
    cols = ["FILE", "ADDON", "CHECKSUM", "RESULT", "WHEN"]
    widths = {c: max(len(c), *(len(r[c]) for r in rows)) for c in cols}
    print("   ".join(c.ljust(widths[c]) for c in cols).rstrip())
    for r in rows:
        print("   ".join(r[c].ljust(widths[c]) for c in cols).rstrip())
        if r["LAST ERROR"]:
            print(f"    error: {r['LAST ERROR']}")
    helm = helm_lines(helm_rows(charts))
    if helm:
        print()
        print("\n".join(helm))
    return 1 if unreadable else 0
