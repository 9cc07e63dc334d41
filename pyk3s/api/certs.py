"""Cluster PKI: CAs, serving and client certificates, kubeconfig files.

Layout under ``<data-dir>/server/tls/`` (dir 0700, every file 0600), as K3s keeps it:

* ``server-ca.crt/.key``  signs serving certificates (the API server's, kubelets')
* ``client-ca.crt/.key``  signs client certificates; the API server trusts it for client auth
* ``serving-kube-apiserver.crt/.key``  the API server's serving cert; regenerated when its SAN set
  changes, it expires within 30 days, or it was not signed by the current server CA
* ``client-admin.crt/.key``  CN ``system:admin``, O ``system:masters`` (the admin kubeconfig user)
* ``client-kube-apiserver.crt/.key``  CN ``system:kube-apiserver``, O ``system:masters``: the API
  server's identity towards kubelets (exec, attach, logs)

Files are created once and reused on later starts. Keys are ECDSA P-256 like K3s's.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = [
    "ClusterCerts",
    "TlsFiles",
    "default_sans",
    "write_kubeconfig",
    "write_private",
]

CA_DAYS = 3650
LEAF_DAYS = 365
RENEW_BEFORE = dt.timedelta(days=30)
IN_CLUSTER_NAMES = (
    "kubernetes",
    "kubernetes.default",
    "kubernetes.default.svc",
)


@dataclass(frozen=True, slots=True)
class TlsFiles:
    """Paths the HTTPS listener needs."""

    cert_file: Path
    key_file: Path
    client_ca_file: Path


def write_private(path: Path, data: bytes, mode: int = 0o600) -> None:
    """Write ``data`` atomically (temp file in the same dir, then rename) with ``mode``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def default_sans(
    *,
    hostname: str,
    node_name: str = "",
    advertise_address: str = "",
    tls_sans: Iterable[str] = (),
    kubernetes_service_ip: str = "10.43.0.1",
    cluster_domain: str = "cluster.local",
) -> tuple[str, ...]:
    """The API server's SAN set: loopback, host/node names, the in-cluster service names and IP."""
    names = ["127.0.0.1", "::1", "localhost", hostname, node_name, advertise_address, *tls_sans]
    names += [*IN_CLUSTER_NAMES, f"kubernetes.default.svc.{cluster_domain}", kubernetes_service_ip]
    seen: dict[str, None] = {}
    for n in names:
        if n:
            seen.setdefault(n.strip(), None)
    return tuple(seen)


def _new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _cert_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _name(cn: str, orgs: Sequence[str] = ()) -> x509.Name:
    attrs = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, o) for o in orgs]
    attrs.append(x509.NameAttribute(NameOID.COMMON_NAME, cn))
    return x509.Name(attrs)


def _san_entries(sans: Iterable[str]) -> list[x509.GeneralName]:
    out: list[x509.GeneralName] = []
    for s in sans:
        try:
            out.append(x509.IPAddress(ipaddress.ip_address(s)))
        except ValueError:
            out.append(x509.DNSName(s))
    return out


def _cert_sans(cert: x509.Certificate) -> set[str]:
    try:
        ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return set()
    return {str(v) for v in ext.get_values_for_type(x509.IPAddress)} | set(
        ext.get_values_for_type(x509.DNSName)
    )


def _normalized(sans: Iterable[str]) -> set[str]:
    out = set()
    for s in sans:
        try:
            out.add(str(ipaddress.ip_address(s)))
        except ValueError:
            out.add(s)
    return out


def _builder(
    subject: x509.Name, issuer: x509.Name, key: ec.EllipticCurvePrivateKey, days: int, *, ca: bool
) -> x509.CertificateBuilder:
    """What CA and leaf certificates share: validity (backdated five minutes so a peer whose clock lags a
    little accepts a fresh certificate), basic constraints and key usage (CAs sign, leaves do TLS)."""
    now = dt.datetime.now(dt.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True, content_commitment=False, key_encipherment=not ca,
                data_encipherment=False, key_agreement=False, key_cert_sign=ca,
                crl_sign=ca, encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
    )


@dataclass(frozen=True, slots=True)
class _Ca:
    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey

    @property
    def pem(self) -> bytes:
        return _cert_pem(self.cert)

    def sign(
        self, cn: str, orgs: Sequence[str], *, server: bool, sans: Sequence[str] = (), days: int = LEAF_DAYS
    ) -> tuple[bytes, bytes]:
        key = _new_key()
        usage = ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH
        builder = (
            _builder(_name(cn, orgs), self.cert.subject, key, days, ca=False)
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()), critical=False
            )
        )
        if sans:
            builder = builder.add_extension(x509.SubjectAlternativeName(_san_entries(sans)), critical=False)
        cert = builder.sign(self.key, hashes.SHA256())
        return _cert_pem(cert), _key_pem(key)


def _new_ca(cn: str) -> _Ca:
    key = _new_key()
    cert = (
        _builder(_name(cn), _name(cn), key, CA_DAYS, ca=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return _Ca(cert, key)


def _load_or_create_ca(tls_dir: Path, stem: str, cn: str) -> _Ca:
    crt, key = tls_dir / f"{stem}.crt", tls_dir / f"{stem}.key"
    if crt.exists() and key.exists():
        cert = x509.load_pem_x509_certificate(crt.read_bytes())
        pkey = serialization.load_pem_private_key(key.read_bytes(), password=None)
        if not isinstance(pkey, ec.EllipticCurvePrivateKey):
            raise ValueError(f"certs: {key}: expected an ECDSA private key")
        return _Ca(cert, pkey)
    ca = _new_ca(cn)
    write_private(key, _key_pem(ca.key))
    write_private(crt, ca.pem)
    return ca


def _leaf_usable(crt: Path, key: Path, ca: _Ca, sans: Sequence[str] | None) -> bool:
    if not (crt.exists() and key.exists()):
        return False
    cert = x509.load_pem_x509_certificate(crt.read_bytes())
    if cert.issuer != ca.cert.subject:
        return False
    try:
        cert.verify_directly_issued_by(ca.cert)
    except Exception:  # noqa: BLE001 - any verification failure means "reissue"
        return False
    if cert.not_valid_after_utc - RENEW_BEFORE < dt.datetime.now(dt.UTC):
        return False
    return sans is None or _cert_sans(cert) == _normalized(sans)


class ClusterCerts:
    """The cluster's CAs plus the API server's own certificates, loaded or created on disk."""

    def __init__(self, tls_dir: Path, server_ca: _Ca, client_ca: _Ca) -> None:
        self.tls_dir = tls_dir
        self._server_ca = server_ca
        self._client_ca = client_ca

    @classmethod
    def ensure(cls, tls_dir: Path, sans: Sequence[str]) -> ClusterCerts:
        """Create what is missing under ``tls_dir``; reissue the serving cert if ``sans`` changed."""
        tls_dir.mkdir(parents=True, exist_ok=True)
        os.chmod(tls_dir, 0o700)
        certs = cls(
            tls_dir,
            _load_or_create_ca(tls_dir, "server-ca", f"k3s-server-ca@{_epoch()}"),
            _load_or_create_ca(tls_dir, "client-ca", f"k3s-client-ca@{_epoch()}"),
        )
        certs._ensure_leaf("serving-kube-apiserver", certs._server_ca, "kube-apiserver", (), sans, server=True)
        certs._ensure_leaf("client-admin", certs._client_ca, "system:admin", ("system:masters",), None)
        certs._ensure_leaf(
            "client-kube-apiserver", certs._client_ca, "system:kube-apiserver", ("system:masters",), None
        )
        return certs

    @classmethod
    def load(cls, tls_dir: Path) -> ClusterCerts:
        """The existing CAs under ``tls_dir`` (to issue certificates from another process)."""
        for stem in ("server-ca", "client-ca"):
            if not (tls_dir / f"{stem}.crt").exists() or not (tls_dir / f"{stem}.key").exists():
                raise FileNotFoundError(f"certs: {tls_dir / stem}.crt/.key missing; start the server first")
        return cls(tls_dir, _load_or_create_ca(tls_dir, "server-ca", ""), _load_or_create_ca(tls_dir, "client-ca", ""))

    def _ensure_leaf(
        self, stem: str, ca: _Ca, cn: str, orgs: Sequence[str], sans: Sequence[str] | None, server: bool = False
    ) -> None:
        crt, key = self.tls_dir / f"{stem}.crt", self.tls_dir / f"{stem}.key"
        if _leaf_usable(crt, key, ca, sans):
            return
        cert_pem, key_pem = ca.sign(cn, orgs, server=server, sans=sans or ())
        write_private(key, key_pem)
        write_private(crt, cert_pem)

    # -- read side ------------------------------------------------------------------------------

    @property
    def server_ca_pem(self) -> bytes:
        return self._server_ca.pem

    @property
    def client_ca_pem(self) -> bytes:
        return self._client_ca.pem

    @property
    def server_ca_file(self) -> Path:
        return self.tls_dir / "server-ca.crt"

    @property
    def client_ca_file(self) -> Path:
        return self.tls_dir / "client-ca.crt"

    @property
    def tls_files(self) -> TlsFiles:
        return TlsFiles(
            cert_file=self.tls_dir / "serving-kube-apiserver.crt",
            key_file=self.tls_dir / "serving-kube-apiserver.key",
            client_ca_file=self.client_ca_file,
        )

    def serving_sans(self) -> set[str]:
        return _cert_sans(x509.load_pem_x509_certificate(self.tls_files.cert_file.read_bytes()))

    def admin_credentials(self) -> tuple[bytes, bytes]:
        return self._pair("client-admin")

    def _pair(self, stem: str) -> tuple[bytes, bytes]:
        return (self.tls_dir / f"{stem}.crt").read_bytes(), (self.tls_dir / f"{stem}.key").read_bytes()

    # -- issuing --------------------------------------------------------------------------------

    def issue_client_cert(self, cn: str, orgs: Sequence[str] = (), days: int = LEAF_DAYS) -> tuple[bytes, bytes]:
        """A client certificate signed by the client CA: (cert_pem, key_pem)."""
        return self._client_ca.sign(cn, orgs, server=False, days=days)

    def issue_serving_cert(
        self, sans: Sequence[str], cn: str = "", days: int = LEAF_DAYS
    ) -> tuple[bytes, bytes]:
        """A serving certificate signed by the server CA (kubelets): (cert_pem, key_pem)."""
        if not sans:
            raise ValueError("certs: issue_serving_cert needs at least one SAN")
        return self._server_ca.sign(cn or sans[0], (), server=True, sans=sans, days=days)


def _epoch() -> int:
    return int(dt.datetime.now(dt.UTC).timestamp())


def write_kubeconfig(
    path: Path,
    server_url: str,
    ca_pem: bytes,
    client_cert_pem: bytes | None = None,
    client_key_pem: bytes | None = None,
    mode: int = 0o600,
    *,
    token: str | None = None,
) -> None:
    """Write a K3s-shaped kubeconfig (cluster, user and context all named ``default``) atomically."""
    import base64

    def b64(data: bytes) -> str:
        return base64.b64encode(data).decode()

    user: dict[str, str] = {}
    if client_cert_pem and client_key_pem:
        user["client-certificate-data"] = b64(client_cert_pem)
        user["client-key-data"] = b64(client_key_pem)
    if token:
        user["token"] = token
    doc = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {"name": "default", "cluster": {"certificate-authority-data": b64(ca_pem), "server": server_url}}
        ],
        "contexts": [{"name": "default", "context": {"cluster": "default", "user": "default"}}],
        "current-context": "default",
        "preferences": {},
        "users": [{"name": "default", "user": user}],
    }
    write_private(Path(path), yaml.safe_dump(doc, sort_keys=False).encode(), mode)
