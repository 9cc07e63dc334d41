"""How an agent joins: the two supervisor endpoints `pyk3s agent --server ... --token ...` calls.

* ``GET /cacerts``, without credentials: the server CA bundle (PEM), as K3s serves it. The agent
  checks it against the ``K10<sha256>`` part of its token before trusting anything else.
* ``POST /v1-pyk3s/node-credentials`` with the join token as bearer and
  ``{"nodeName", "nodePassword", "addresses"}``: a client certificate for ``system:node:<name>``
  (O ``system:nodes``), a kubelet serving certificate for ``addresses``, both CAs and the cluster
  settings the agent needs. The node-password guard is the one the embedded agent uses: the scrypt
  hash in Secret ``kube-system/<node>.node-password.pyk3s``; a different password answers 403 with
  K3s's message. A wrong token answers 401 naming ``--token``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

from aiohttp import web

from pyk3s.api.proxy import INTERNAL_USER
from pyk3s.api.request import ApiRequest
from pyk3s.k3s.node import (
    PASSWORD_FILE,
    PASSWORD_SECRET_NAMESPACE,
    is_valid_node_name,
    password_rejected,
    password_secret_name,
    stored_password_hash,
    verify_password,
)
from pyk3s.k3s.token import join_token_matches

__all__ = ["JoinService", "NODE_CREDENTIALS_PATH"]

log = logging.getLogger("pyk3s.api.join")
NODE_CREDENTIALS_PATH = "/v1-pyk3s/node-credentials"


def _status(code: int, reason: str, message: str) -> web.Response:
    body = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": message,
            "reason": reason, "code": code}
    return web.Response(status=code, body=json.dumps(body).encode(), content_type="application/json")


class JoinService:
    """The join endpoints of one server; ``token`` is kept current by :meth:`RunningApi.set_join_token`."""

    def __init__(self, api: Any, certs: Any, settings: Any, token: str) -> None:
        self.api, self.certs, self.settings, self.token = api, certs, settings, token

    def routes(self) -> list[tuple[str, str, Callable[[web.Request], Any]]]:
        return [("GET", "/cacerts", self.cacerts), ("POST", NODE_CREDENTIALS_PATH, self.node_credentials)]

    async def cacerts(self, request: web.Request) -> web.Response:
        return web.Response(body=self.certs.server_ca_pem, content_type="application/x-pem-file")

    async def _get_secret(self, name: str) -> dict | None:
        resp = await self.api.handle(ApiRequest("GET", f"/api/v1/namespaces/{PASSWORD_SECRET_NAMESPACE}/secrets/{name}",
                                                headers={"accept": "application/json"}, user=INTERNAL_USER))
        return json.loads(resp.body) if resp.status == 200 else None

    async def node_credentials(self, request: web.Request) -> web.Response:
        scheme, _, presented = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not join_token_matches(presented.strip(), self.token):
            log.warning("join: rejected node-credentials request from %s: wrong token", request.remote)
            return _status(401, "Unauthorized", "pyk3s: the join token was rejected by the server: check --token "
                           "(K3S_TOKEN); use the contents of <data-dir>/server/token on the server")
        try:
            body = await request.json()
            name = str(body["nodeName"])
            password = str(body["nodePassword"])
            addresses = [str(a) for a in body.get("addresses") or []]
        except (ValueError, KeyError, TypeError):
            return _status(400, "BadRequest", "pyk3s: node-credentials: body must be JSON with nodeName, "
                           "nodePassword and addresses")
        if not is_valid_node_name(name):
            return _status(400, "BadRequest", f"pyk3s: node name {name!r} is not a lower-case RFC 1123 subdomain; "
                           "set a valid one with --node-name")
        secret = await self._get_secret(password_secret_name(name))
        if secret is not None:
            if not verify_password(password, stored_password_hash(secret)):
                log.warning("join: node %s: password mismatch (duplicate node name?)", name)
                msg = password_rejected(f"<data-dir>/agent/{PASSWORD_FILE}")
                return _status(403, "Forbidden", f"pyk3s: node {name!r}: {msg}")
        client_crt, client_key = self.certs.issue_client_cert(f"system:node:{name}", ("system:nodes",))
        sans = list(dict.fromkeys([name, "localhost", "127.0.0.1", *addresses]))
        serving_crt, serving_key = self.certs.issue_serving_cert(sans, cn=name)
        s = self.settings
        log.info("join: issued credentials for node %s (%s)", name, ", ".join(addresses) or "no addresses")
        return web.json_response({
            "clientCert": client_crt.decode(), "clientKey": client_key.decode(),
            "servingCert": serving_crt.decode(), "servingKey": serving_key.decode(),
            "serverCA": self.certs.server_ca_pem.decode(), "clientCA": self.certs.client_ca_pem.decode(),
            "config": {"clusterCIDRs": list(s.cluster_cidrs), "serviceCIDRs": list(s.service_cidrs),
                       "clusterDNS": [s.cluster_dns], "clusterDomain": s.cluster_domain,
                       **s.agent_config},
        })
