"""Which resources the API serves, through the client (``/api/v1``, ``/apis``, ``/apis/<gv>``).

The garbage collector and the namespace controller work on every served resource, CRDs included,
so they ask discovery instead of keeping a list. Only the preferred version of each group is used,
and subresources (``pods/status``) are skipped.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from pyk3s.client import ApiError

__all__ = ["ApiResource", "discover"]

log = logging.getLogger("pyk3s.controllers.discovery")


@dataclass(frozen=True, slots=True)
class ApiResource:
    api_version: str
    plural: str
    kind: str
    namespaced: bool
    verbs: frozenset[str]

    @property
    def group(self) -> str:
        return self.api_version.rpartition("/")[0]

    def can(self, *verbs: str) -> bool:
        return all(v in self.verbs for v in verbs)


def _rows(api_version: str, doc: dict[str, Any]) -> list[ApiResource]:
    out = []
    for r in doc.get("resources") or []:
        if "/" in r.get("name", ""):
            continue
        out.append(ApiResource(api_version, r["name"], r.get("kind", ""), bool(r.get("namespaced")),
                               frozenset(r.get("verbs") or ())))
    return out


async def discover(client: Any) -> list[ApiResource]:
    """Every served top-level resource in its group's preferred version."""
    out = _rows("v1", await client.call("GET", "/api/v1"))
    groups = await client.call("GET", "/apis")
    for g in groups.get("groups") or []:
        gv = (g.get("preferredVersion") or {}).get("groupVersion") or ""
        if not gv:
            continue
        try:
            out.extend(_rows(gv, await client.call("GET", f"/apis/{gv}")))
        except ApiError as err:
            log.warning("discovery: /apis/%s: %s", gv, err)
    return out
