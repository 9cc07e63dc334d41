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

import base64
import hmac
import json
import logging
import re
from collections.abc import Callable
from typing import Any

from aiohttp import web

from pyk3s.api.proxy import INTERNAL_USER
from pyk3s.api.request import ApiRequest

__all__ = ["JoinService", "NODE_CREDENTIALS_PATH"]

log = logging.getLogger("pyk3s.api.join")
NODE_CREDENTIALS_PATH = "/v1-pyk3s/node-credentials"
_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_REJECTED = ("Node password rejected, duplicate hostname or contents of '{path}' may not match server "
             "node-passwd entry, try enabling a unique node name with the --with-node-id flag")


def _status(code: int, reason: str, message: str) -> web.Response:
    body = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": message,
            "reason": reason, "code": code}
    return web.Response(status=code, body=json.dumps(body).encode(), content_type="application/json")


def _token_forms(token: str) -> tuple[str, ...]:
    forms = [token]
    if token.startswith("K10") and "::" in token:
        cred = token.split("::", 1)[1]
        forms.append(cred.split(":", 1)[1] if ":" in cred else cred)
    return tuple(f for f in forms if f)


class JoinService:
    """The join endpoints of one server; ``token`` is kept current by :meth:`RunningApi.set_join_token`."""

    def __init__(self, api: Any, certs: Any, settings: Any, token: str) -> None:
        self.api, self.certs, self.settings, self.token = api, certs, settings, token

    def routes(self) -> list[tuple[str, str, Callable[[web.Request], Any]]]:
        return [("GET", "/cacerts", self.cacerts), ("POST", NODE_CREDENTIALS_PATH, self.node_credentials)]

    async def cacerts(self, request: web.Request) -> web.Response:
        return web.Response(body=self.certs.server_ca_pem, content_type="application/x-pem-file")

    def _token_ok(self, presented: str) -> bool:
        known = self.token
        if not known or not presented:
            return False
        # a K10 token from another cluster must not pass on its password alone
        if presented.startswith("K10") and known.startswith("K10") and presented.split("::")[0] != known.split("::")[0]:
            return False
        wanted = _token_forms(known)
        return any(hmac.compare_digest(p.encode(), w.encode()) for p in _token_forms(presented) for w in wanted)

    async def _get_secret(self, name: str) -> dict | None:
        resp = await self.api.handle(ApiRequest("GET", f"/api/v1/namespaces/kube-system/secrets/{name}",
                                                headers={"accept": "application/json"}, user=INTERNAL_USER))
        return json.loads(resp.body) if resp.status == 200 else None

    async def node_credentials(self, request: web.Request) -> web.Response:
        from pyk3s.agent.node import verify_password

        scheme, _, presented = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not self._token_ok(presented.strip()):
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
        if len(name) > 253 or not _NAME.match(name):
            return _status(400, "BadRequest", f"pyk3s: node name {name!r} is not a lower-case RFC 1123 subdomain; "
                           "set a valid one with --node-name")
        secret = await self._get_secret(f"{name}.node-password.pyk3s")
        if secret is not None:
            stored = base64.b64decode((secret.get("data") or {}).get("hash", "")).decode(errors="replace")
            if not verify_password(password, stored):
                log.warning("join: node %s: password mismatch (duplicate node name?)", name)
                msg = _REJECTED.format(path="<data-dir>/agent/node-password")
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
                       "disableNetworkPolicy": bool(getattr(s, "disable_network_policy", False))},
        })
