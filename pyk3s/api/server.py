"""A running API server: certificates, the core, authentication, RBAC, reviews, kubelet relay, HTTPS.

``start_api_server(settings, store)`` is what ``pyk3s server`` calls. On first start it creates the
PKI under ``<data-dir>/server/tls`` (reused on later starts). The server token is ``--token`` or the
existing ``<data-dir>/server/token`` (the CLI owns that file and may replace the token later with
:meth:`RunningApi.set_join_token`). The built-in RBAC policy (cluster-admin, view, edit, admin,
discovery ...) is written to the store when missing.
"""

from __future__ import annotations

import json
import logging
import socket
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pyk3s.api.authn import Authenticator, ServiceAccountTokens
from pyk3s.api.certs import ClusterCerts, default_sans, write_kubeconfig
from pyk3s.api.errors import not_found
from pyk3s.api.http import HttpServer, serve
from pyk3s.api.join import JoinService
from pyk3s.api.proxy import INTERNAL_USER, KubeletProxy
from pyk3s.api.rbac import BOOTSTRAP_OBJECTS, RbacAuthorizer
from pyk3s.api.request import ApiRequest
from pyk3s.api.reviews import register_reviews

__all__ = ["RunningApi", "ServerApiSettings", "read_server_token", "start_api_server"]

log = logging.getLogger("pyk3s.api.server")


@dataclass(frozen=True, slots=True)
class ServerApiSettings:
    data_dir: Path
    bind_address: str = "0.0.0.0"
    https_port: int = 6443
    advertise_address: str = ""
    advertise_port: int = 0  # 0: the HTTPS port
    tls_sans: tuple[str, ...] = ()
    token: str = ""
    node_name: str = ""
    service_cidrs: tuple[str, ...] = ("10.43.0.0/16",)
    cluster_cidrs: tuple[str, ...] = ("10.42.0.0/16",)
    node_port_range: tuple[int, int] = (30000, 32767)
    cluster_domain: str = "cluster.local"
    cluster_dns: str = "10.43.0.10"
    agent_config: dict[str, object] = field(default_factory=dict)   # more settings joining agents get
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def server_dir(self) -> Path:
        return Path(self.data_dir) / "server"

    @property
    def tls_dir(self) -> Path:
        return self.server_dir / "tls"

    @property
    def kubernetes_service_ip(self) -> str:
        import ipaddress

        return str(next(ipaddress.ip_network(self.service_cidrs[0], strict=False).hosts()))


def read_server_token(server_dir: Path, token: str) -> str:
    """The ``--token`` value, else the existing ``<server_dir>/token`` (written by the CLI), else ""."""
    if token:
        return token
    path = server_dir / "token"
    return path.read_text().strip() if path.exists() else ""


def _free_port(host: str) -> int:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.bind((host if host not in ("", "0.0.0.0", "::") else ("::1" if host == "::" else "127.0.0.1"), 0))
        return s.getsockname()[1]


@dataclass(slots=True)
class RunningApi:
    api: Any
    http: HttpServer
    certs: ClusterCerts
    authenticator: Authenticator
    authorizer: RbacAuthorizer
    proxy: KubeletProxy
    token: str
    settings: ServerApiSettings
    join: JoinService | None = None

    @property
    def url(self) -> str:
        return self.http.url

    @property
    def port(self) -> int:
        return self.http.port

    @property
    def ca_pem(self) -> bytes:
        return self.certs.server_ca_pem

    def set_join_token(self, token: str) -> None:
        """Accept ``token`` (K3s secure form or bare password) as the server token from now on."""
        self.token = token
        self.authenticator.set_server_token(token)
        if self.join is not None:
            self.join.token = token

    def write_admin_kubeconfig(self, path: Path, mode: int = 0o600, server_url: str | None = None) -> None:
        cert, key = self.certs.admin_credentials()
        write_kubeconfig(Path(path), server_url or self.url, self.ca_pem, cert, key, mode)

    def write_client_kubeconfig(self, path: Path, cn: str, orgs: Sequence[str] = (), mode: int = 0o600,
                                server_url: str | None = None) -> None:
        """A kubeconfig for another identity (agents, controllers, tests)."""
        cert, key = self.certs.issue_client_cert(cn, orgs)
        write_kubeconfig(Path(path), server_url or self.url, self.ca_pem, cert, key, mode)

    def issue_sa_token(self, namespace: str, name: str, audiences: Sequence[str] = (),
                       expiration_seconds: int = 3600, bound_pod: dict | None = None, sa_uid: str = "") -> str:
        assert self.authenticator.sa_tokens is not None
        return self.authenticator.sa_tokens.issue(namespace, name, audiences, expiration_seconds, bound_pod,
                                                  sa_uid=sa_uid)

    async def stop(self) -> None:
        await self.http.stop()
        await self.proxy.close()
        await self.authorizer.stop()
        await self.api.stop()


def _api_config(settings: ServerApiSettings, advertise_port: int) -> Any:
    from pyk3s.api.config import ApiConfig

    return ApiConfig(
        service_cidrs=tuple(settings.service_cidrs),
        cluster_cidrs=tuple(settings.cluster_cidrs),
        node_port_range=tuple(settings.node_port_range),  # type: ignore[arg-type]
        cluster_domain=settings.cluster_domain,
        advertise_address=settings.advertise_address or "127.0.0.1",
        advertise_port=advertise_port,
    )


def _sa_token_hook(api: Any, tokens: ServiceAccountTokens):
    async def hook(req: ApiRequest, namespace: str, name: str, body: dict) -> dict:
        resp = await api.handle(ApiRequest("GET", f"/api/v1/namespaces/{namespace}/serviceaccounts/{name}",
                                           headers={"accept": "application/json"}, user=INTERNAL_USER))
        if resp.status != 200:
            raise not_found("serviceaccounts", "", name)
        sa_uid = (json.loads(resp.body).get("metadata") or {}).get("uid", "")
        spec = dict(body.get("spec") or {})
        expiration = int(spec.get("expirationSeconds") or 3600)
        audiences = list(spec.get("audiences") or tokens.api_audiences)
        ref = spec.get("boundObjectRef") or {}
        pod = {"name": ref.get("name", ""), "uid": ref.get("uid", "")} if ref.get("kind") == "Pod" else None
        token = tokens.issue(namespace, name, audiences, expiration, pod, sa_uid=sa_uid)
        claims = tokens.verify(token, audiences)
        import datetime as dt

        expires = dt.datetime.fromtimestamp(claims.expires if claims else 0, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        spec["audiences"] = audiences
        spec["expirationSeconds"] = expiration
        meta = dict(body.get("metadata") or {})
        meta.setdefault("name", name)
        meta.setdefault("namespace", namespace)
        meta.setdefault("creationTimestamp", None)
        return {"kind": "TokenRequest", "apiVersion": "authentication.k8s.io/v1", "metadata": meta,
                "spec": spec, "status": {"token": token, "expirationTimestamp": expires}}
    return hook


async def _ensure_bootstrap_rbac(api: Any) -> None:
    for obj in BOOTSTRAP_OBJECTS:
        plural = {"ClusterRole": "clusterroles", "ClusterRoleBinding": "clusterrolebindings"}[obj["kind"]]
        path = f"/apis/rbac.authorization.k8s.io/v1/{plural}"
        name = obj["metadata"]["name"]
        got = await api.handle(ApiRequest("GET", f"{path}/{name}", headers={"accept": "application/json"},
                                          user=INTERNAL_USER))
        if got.status == 200:
            continue
        resp = await api.handle(ApiRequest("POST", path, headers={"content-type": "application/json",
                                                                  "accept": "application/json"},
                                           body=json.dumps(obj).encode(), user=INTERNAL_USER))
        if resp.status not in (200, 201, 409):
            log.warning("api/server: creating %s %s failed: HTTP %d %s", obj["kind"], name, resp.status,
                        resp.body[:200])


async def start_api_server(settings: ServerApiSettings, store: Any) -> RunningApi:
    """Create or load the PKI, start the core on ``store`` and serve it over HTTPS."""
    from pyk3s.api.app import ApiServer

    settings.server_dir.mkdir(parents=True, exist_ok=True)
    sans = default_sans(
        hostname=socket.gethostname(), node_name=settings.node_name, advertise_address=settings.advertise_address,
        tls_sans=settings.tls_sans, kubernetes_service_ip=settings.kubernetes_service_ip,
        cluster_domain=settings.cluster_domain,
    )
    if settings.bind_address not in ("", "0.0.0.0", "::"):
        sans = (*sans, settings.bind_address)
    certs = ClusterCerts.ensure(settings.tls_dir, sans)
    token = read_server_token(settings.server_dir, settings.token)
    sa_tokens = ServiceAccountTokens.load_or_create(settings.tls_dir / "service.key")
    authenticator = Authenticator(server_token=token, sa_tokens=sa_tokens)

    port = settings.https_port or _free_port(settings.bind_address)
    api = ApiServer(store, _api_config(settings, settings.advertise_port or port))
    authorizer = RbacAuthorizer(store)
    api.authorizer = authorizer
    proxy = KubeletProxy(api, client_cert_file=settings.tls_dir / "client-kube-apiserver.crt",
                         client_key_file=settings.tls_dir / "client-kube-apiserver.key",
                         server_ca_file=certs.server_ca_file)
    api.subresources.pod_log_hook = proxy.pod_log
    api.subresources.sa_token_hook = _sa_token_hook(api, sa_tokens)
    register_reviews(api, authorizer, authorizer, authenticator)
    await api.start()
    await authorizer.start()
    await _ensure_bootstrap_rbac(api)
    join = JoinService(api, certs, settings, token)
    # the loopback of the service CIDR's family, as K3s writes it into the kubeconfig
    loopback = "::1" if ":" in settings.kubernetes_service_ip else "127.0.0.1"
    http = await serve(api, bind=settings.bind_address, port=port, tls=certs.tls_files,
                       authenticator=authenticator, proxy=proxy, routes=join.routes(), loopback=loopback)
    return RunningApi(api, http, certs, authenticator, authorizer, proxy, token, settings, join)
