"""Writing the Gateway API statuses that :func:`~.gateway.load_gateways` computed.

A condition keeps its lastTransitionTime while its type and status stay the same, so a rebuild that
changes nothing writes nothing. A route's parents written by other controllers are kept; only the ones
of ``traefik.io/gateway-controller`` are replaced (as Traefik's UpdateHTTPRouteStatus does).
"""

from __future__ import annotations

import datetime
import logging
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from .common import KubeObject
from .gateway import StatusWrite
from .gateway_listeners import CONTROLLER

if TYPE_CHECKING:
    from pyk3s.client import Client

__all__ = ["desired_status", "write_statuses"]

log = logging.getLogger("pyk3s.ingress")


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _timed(conds: Iterable[Mapping[str, Any]], old: Iterable[Mapping[str, Any]], now: str) -> list[dict[str, Any]]:
    before = {(c.get("type"), c.get("status")): c.get("lastTransitionTime") for c in old}
    return [{**c, "lastTransitionTime": c.get("lastTransitionTime") or before.get((c["type"], c["status"])) or now}
            for c in conds]


def desired_status(write: StatusWrite, current: KubeObject | None, now: str | None = None) -> dict[str, Any]:
    """The whole status to write over the object's current one."""
    now = now or _now()
    old = (current or {}).get("status") or {}
    want = dict(write.status)
    if "parents" in want:
        old_parents = [p for p in old.get("parents") or () if p.get("controllerName") == CONTROLLER]
        parents = []
        for p in want["parents"]:
            prev: Mapping[str, Any] = next((o for o in old_parents if o.get("parentRef") == p["parentRef"]), {})
            parents.append({**p, "conditions": _timed(p["conditions"], prev.get("conditions") or (), now)})
        want["parents"] = [p for p in old.get("parents") or () if p.get("controllerName") != CONTROLLER] + parents
        return {**old, **want}
    if "listeners" in want:
        old_listeners = {x.get("name"): x for x in old.get("listeners") or ()}
        want["listeners"] = [{**x, "conditions": _timed(x["conditions"],
                                                        (old_listeners.get(x["name"]) or {}).get("conditions") or (), now)}
                             for x in want["listeners"]]
    want["conditions"] = _timed(want.get("conditions") or (), old.get("conditions") or (), now)
    return {**old, **want}


async def write_statuses(client: Client, objects: list[KubeObject], writes: list[StatusWrite]) -> None:
    """Write every status that differs from the object's current one (errors are logged and retried on
    the next change)."""
    by_key = {(o.get("kind"), (o.get("metadata") or {}).get("namespace", ""), (o.get("metadata") or {}).get("name")): o
              for o in objects}
    for write in writes:
        current = by_key.get((write.kind, write.namespace, write.name))
        if current is None:
            continue
        status = desired_status(write, current)
        if status == current.get("status"):
            continue
        body = {**current, "status": status}
        try:
            await client.resource(write.api_version, write.plural).update_status(body)
        except Exception as err:  # noqa: BLE001 - retried on the next change
            log.warning("ingress: status of %s %s/%s: %s", write.kind, write.namespace, write.name, err)
