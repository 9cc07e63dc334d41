"""ServiceAccounts controller: every active namespace has ServiceAccount ``default``.

Like kube-controller-manager's serviceaccount controller: on a namespace event or a deleted
``default`` ServiceAccount, create it again unless the namespace is terminating. Pods name
``default`` implicitly, and the kubelet requests their projected token for it.
"""

from __future__ import annotations

import logging
from typing import Any

from pyk3s.client import AlreadyExists, ApiError
from pyk3s.client.controller import Result

from .common.loop import Loop
from .common.settings import ControllerSettings
from .objects import is_deleting, name_of, namespace_of

__all__ = ["DEFAULT_SERVICE_ACCOUNT", "ServiceAccountsController"]

log = logging.getLogger("pyk3s.controllers.serviceaccounts")

DEFAULT_SERVICE_ACCOUNT = "default"


class ServiceAccountsController(Loop):
    name = "serviceaccount"

    def __init__(self, client: Any, settings: ControllerSettings | None = None) -> None:
        super().__init__(client, settings)
        self.namespaces = self.informer("v1", "namespaces")
        self.accounts = self.informer("v1", "serviceaccounts",
                                      field_selector=f"metadata.name={DEFAULT_SERVICE_ACCOUNT}")
        self.sa_api = client.resource("v1", "serviceaccounts")
        self.controller.watch(self.namespaces, lambda ns: [name_of(ns)])
        self.controller.watch(self.accounts, lambda sa: [namespace_of(sa)])

    async def reconcile(self, key: str) -> Result | None:
        ns = self.namespaces.get(key)
        if ns is None or is_deleting(ns) or (ns.get("status") or {}).get("phase") == "Terminating":
            return None
        if self.accounts.get(f"{key}/{DEFAULT_SERVICE_ACCOUNT}") is not None:
            return None
        sa = {"apiVersion": "v1", "kind": "ServiceAccount",
              "metadata": {"name": DEFAULT_SERVICE_ACCOUNT, "namespace": key}}
        try:
            await self.sa_api.create(sa, key)
            log.info("serviceaccount: created %s/%s", key, DEFAULT_SERVICE_ACCOUNT)
        except AlreadyExists:
            pass
        except ApiError as exc:
            if exc.status == 403 and "terminat" in str(exc).lower():  # namespace being deleted meanwhile
                return None
            raise
        return None
