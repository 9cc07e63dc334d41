"""Where the API is and how to prove who we are: kubeconfig files and the in-cluster service account."""

from __future__ import annotations

import base64
import os
import ssl
import tempfile
from dataclasses import dataclass
from pathlib import Path

import yaml

__all__ = ["ClusterAccess", "in_cluster_access", "load_kubeconfig", "SA_DIR"]

SA_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")


@dataclass(frozen=True, slots=True)
class ClusterAccess:
    server: str
    ca_pem: bytes | None = None
    cert_pem: bytes | None = None
    key_pem: bytes | None = None
    token: str | None = None
    token_file: str | None = None
    insecure: bool = False
    namespace: str = "default"

    def bearer(self) -> str | None:
        if self.token_file:
            try:
                return Path(self.token_file).read_text().strip()
            except OSError:
                return self.token
        return self.token

    def ssl_context(self) -> ssl.SSLContext | None:
        if not self.server.startswith("https"):
            return None
        ctx = ssl.create_default_context()
        if self.insecure:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        elif self.ca_pem:
            ctx = ssl.create_default_context(cadata=self.ca_pem.decode())
        ctx.set_alpn_protocols(["http/1.1"])
        if self.cert_pem and self.key_pem:
            # load_cert_chain only reads files; keep them private and short-lived.
            with tempfile.TemporaryDirectory(prefix="pyk3s-client-") as tmp:
                cert = Path(tmp, "c.pem")
                key = Path(tmp, "k.pem")
                cert.write_bytes(self.cert_pem)
                key.touch(mode=0o600)
                key.write_bytes(self.key_pem)
                ctx.load_cert_chain(cert, key)
        return ctx


def _data_or_file(entry: dict, key: str, base: Path) -> bytes | None:
    if entry.get(f"{key}-data"):
        return base64.b64decode(entry[f"{key}-data"])
    if entry.get(key):
        path = Path(entry[key])
        if not path.is_absolute():
            path = base / path
        return path.read_bytes()
    return None


def load_kubeconfig(path: str | os.PathLike[str], context: str | None = None) -> ClusterAccess:
    p = Path(path)
    doc = yaml.safe_load(p.read_text()) or {}
    ctx_name = context or doc.get("current-context")
    contexts = {c["name"]: c.get("context", {}) for c in doc.get("contexts") or []}
    if ctx_name not in contexts:
        if len(contexts) == 1:
            ctx_name = next(iter(contexts))
        else:
            raise ValueError(f"kubeconfig {p}: context {ctx_name!r} not found")
    ctx = contexts[ctx_name]
    clusters = {c["name"]: c.get("cluster", {}) for c in doc.get("clusters") or []}
    users = {u["name"]: u.get("user", {}) for u in doc.get("users") or []}
    cluster = clusters.get(ctx.get("cluster"))
    if cluster is None:
        raise ValueError(f"kubeconfig {p}: cluster {ctx.get('cluster')!r} not found")
    user = users.get(ctx.get("user"), {})
    return ClusterAccess(
        server=cluster["server"].rstrip("/"),
        ca_pem=_data_or_file(cluster, "certificate-authority", p.parent),
        cert_pem=_data_or_file(user, "client-certificate", p.parent),
        key_pem=_data_or_file(user, "client-key", p.parent),
        token=user.get("token"),
        token_file=user.get("tokenFile"),
        insecure=bool(cluster.get("insecure-skip-tls-verify")),
        namespace=ctx.get("namespace") or "default",
    )


def in_cluster_access(sa_dir: Path = SA_DIR) -> ClusterAccess:
    host = os.environ.get("KUBERNETES_SERVICE_HOST")
    port = os.environ.get("KUBERNETES_SERVICE_PORT", "443")
    if not host:
        raise RuntimeError("not running in a cluster: KUBERNETES_SERVICE_HOST is not set; pass --kubeconfig")
    if ":" in host:
        host = f"[{host}]"
    ns_file = sa_dir / "namespace"
    return ClusterAccess(
        server=f"https://{host}:{port}",
        ca_pem=(sa_dir / "ca.crt").read_bytes(),
        token_file=str(sa_dir / "token"),
        namespace=ns_file.read_text().strip() if ns_file.exists() else "default",
    )
