"""The HelmChart part of `pyk3s manifests status`: each HelmChart, its release, the objects it rendered
and the values pyk3s does not act on, so nobody has to read status conditions to learn them."""

from __future__ import annotations

from typing import Any

__all__ = ["helm_lines", "helm_rows"]


def _condition(chart: dict[str, Any], kind: str) -> dict[str, Any]:
    return next((c for c in (chart.get("status") or {}).get("conditions") or [] if c.get("type") == kind), {})


def helm_rows(charts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    rows = []
    for chart in sorted(charts, key=lambda c: (c["metadata"].get("namespace", ""), c["metadata"]["name"])):
        meta, spec, status = chart["metadata"], chart.get("spec") or {}, chart.get("status") or {}
        failed = _condition(chart, "Failed")
        if meta.get("deletionTimestamp"):
            state = "Uninstalling"
        elif failed.get("status") == "True":
            state = f"Failed ({failed.get('reason', '')})"
        elif status.get("revision"):
            state = "Deployed"
        else:
            state = "Pending"
        version = status.get("chartVersion")
        rows.append({
            "HELMCHART": f"{meta.get('namespace')}/{meta['name']}",
            "CHART": f"{meta['name']} {version}" if version else str(spec.get("chart") or "(chartContent)"),
            "RELEASE": str(status.get("release") or ""),
            "REVISION": str(status.get("revision") or ""),
            "STATUS": state,
            "objects": list(status.get("objects") or []),
            "ignored": [f"{i.get('key')}: {i.get('reason')}" for i in status.get("ignoredValues") or []],
            "error": failed.get("message", "") if failed.get("status") == "True" else "",
        })
    return rows


def helm_lines(rows: list[dict[str, Any]]) -> list[str]:
    if not rows:
        return []
    cols = ["HELMCHART", "CHART", "RELEASE", "REVISION", "STATUS"]
    widths = {c: max(len(c), *(len(r[c]) for r in rows)) for c in cols}
    out = ["   ".join(c.ljust(widths[c]) for c in cols).rstrip()]
    for r in rows:
        out.append("   ".join(r[c].ljust(widths[c]) for c in cols).rstrip())
        if r["objects"]:
            out.append(f"    objects: {', '.join(r['objects'])}")
        for item in r["ignored"]:
            out.append(f"    ignored: {item}")
        if r["error"]:
            out.append(f"    error: {r['error']}")
    return out
