"""TLS for entrypoints: certificates from Secrets chosen by SNI, a generated default, TLSOptions (spec §8).

One listening context per TLS entrypoint carries an SNI callback; the callback looks at the *current*
:class:`CertStore` (rebuilt and swapped with every configuration) and moves the connection to the
context of the best certificate: exact SAN first, then a ``*.`` wildcard covering the first label,
otherwise the default certificate (TLSStore ``default`` or a generated ``TRAEFIK DEFAULT CERT``).
The TLSOption of the routers whose Host matches the server name (else ``default``) sets the protocol
versions, cipher suites and ALPN. HTTP/2 is not spoken, so ALPN offers ``http/1.1`` only.
"""

from __future__ import annotations

import datetime
import os
import ssl
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from ..config.dynamic import Certificate, DynamicConfig, TLSOptions
from ..rules import parse_rule

__all__ = ["CertStore", "default_certificate", "listening_context", "build_store", "host_options", "VERSIONS"]

VERSIONS = {"VersionTLS10": ssl.TLSVersion.TLSv1, "VersionTLS11": ssl.TLSVersion.TLSv1_1,
            "VersionTLS12": ssl.TLSVersion.TLSv1_2, "VersionTLS13": ssl.TLSVersion.TLSv1_3}

# Go cipher suite names -> OpenSSL names (TLS 1.2; TLS 1.3 suites are not configurable, as in Go).
CIPHERS = {
    "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256": "ECDHE-ECDSA-AES128-GCM-SHA256",
    "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256": "ECDHE-RSA-AES128-GCM-SHA256",
    "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384": "ECDHE-ECDSA-AES256-GCM-SHA384",
    "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384": "ECDHE-RSA-AES256-GCM-SHA384",
    "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305": "ECDHE-ECDSA-CHACHA20-POLY1305",
    "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256": "ECDHE-ECDSA-CHACHA20-POLY1305",
    "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305": "ECDHE-RSA-CHACHA20-POLY1305",
    "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256": "ECDHE-RSA-CHACHA20-POLY1305",
    "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA": "ECDHE-ECDSA-AES128-SHA",
    "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA": "ECDHE-RSA-AES128-SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA": "ECDHE-ECDSA-AES256-SHA",
    "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA": "ECDHE-RSA-AES256-SHA",
    "TLS_RSA_WITH_AES_128_GCM_SHA256": "AES128-GCM-SHA256",
    "TLS_RSA_WITH_AES_256_GCM_SHA384": "AES256-GCM-SHA384",
    "TLS_RSA_WITH_AES_128_CBC_SHA": "AES128-SHA",
    "TLS_RSA_WITH_AES_256_CBC_SHA": "AES256-SHA",
}
_TLS13 = {"TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256"}


def default_certificate() -> Certificate:
    """Self-signed ``TRAEFIK DEFAULT CERT`` (Traefik pkg/tls/generate)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "TRAEFIK DEFAULT CERT")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(days=365))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("traefik.default")]), critical=False)
            .sign(key, hashes.SHA256()))
    return Certificate(cert.public_bytes(serialization.Encoding.PEM).decode(),
                       key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                         serialization.NoEncryption()).decode(), ("default",), "generated")


def _names(cert_pem: str) -> list[str]:
    cert = x509.load_pem_x509_certificate(cert_pem.encode())
    names: list[str] = []
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        names += [n.lower() for n in san.get_values_for_type(x509.DNSName)]
        names += [str(ip) for ip in san.get_values_for_type(x509.IPAddress)]
    except x509.ExtensionNotFound:
        pass
    for attr in cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME):
        if isinstance(attr.value, str) and attr.value.lower() not in names:
            names.append(attr.value.lower())
    return names


def _context(cert: Certificate, options: TLSOptions, tcp: bool = False) -> ssl.SSLContext:
    """A server context; ``tcp``: for a TCP router that terminates TLS, which offers the option's ALPN
    protocols as they are (HTTP entry points offer http/1.1 only)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = VERSIONS.get(options.min_version, ssl.TLSVersion.TLSv1_2)
    if options.max_version:
        ctx.maximum_version = VERSIONS.get(options.max_version, ssl.TLSVersion.MAXIMUM_SUPPORTED)
    suites = [CIPHERS[c] for c in options.cipher_suites if c in CIPHERS]
    if suites:
        ctx.set_ciphers(":".join(suites))
    if tcp:
        alpn = [p for p in options.alpn_protocols if p != "acme-tls/1"]
    else:
        alpn = [p for p in options.alpn_protocols if p == "http/1.1"] or ["http/1.1"]
    if alpn:
        ctx.set_alpn_protocols(alpn)
    if options.client_auth_type in ("RequireAndVerifyClientCert", "VerifyClientCertIfGiven") and options.client_ca_pems:
        ctx.load_verify_locations(cadata="\n".join(options.client_ca_pems))
        ctx.verify_mode = ssl.CERT_REQUIRED if options.client_auth_type == "RequireAndVerifyClientCert" else ssl.CERT_OPTIONAL
    with tempfile.TemporaryDirectory(prefix="pk-tls-") as tmp:
        path = os.path.join(tmp, "cert.pem")
        fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(cert.cert_pem.strip() + "\n" + cert.key_pem.strip() + "\n")
        ctx.load_cert_chain(path)
    return ctx


def validate_options(options: TLSOptions, where: str) -> str:
    """An error message for unknown versions/ciphers, or ''."""
    for v in (options.min_version, options.max_version):
        if v and v not in VERSIONS:
            return f"{where}: unknown TLS version {v}"
    for c in options.cipher_suites:
        if c not in CIPHERS and c not in _TLS13:
            return f"{where}: invalid CipherSuite: {c}"
    return ""


@dataclass(slots=True)
class CertStore:
    certs: list[tuple[list[str], Certificate]] = field(default_factory=list)
    default: Certificate | None = None
    options: dict[str, TLSOptions] = field(default_factory=dict)
    host_options: dict[str, str] = field(default_factory=dict)
    contexts: dict[tuple[int, str, bool], ssl.SSLContext] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)

    def best(self, server_name: str) -> tuple[int, Certificate]:
        name = server_name.strip().lower().rstrip(".")
        exact = [(i, c) for i, (names, c) in enumerate(self.certs) if name in names]
        if exact:
            return exact[-1]
        if "." in name:
            wild = "*." + name.split(".", 1)[1]
            found = [(i, c) for i, (names, c) in enumerate(self.certs) if wild in names]
            if found:
                return found[-1]
        return -1, self.default or default_certificate()

    def context_for(self, server_name: str, options: str | None = None) -> ssl.SSLContext | None:
        """The context for a server name: its best certificate, and the TLS options of the HTTPS routers
        for that name, or ``options`` (a TCP router's, which then also get the options' ALPN list).
        None when that context cannot be built (unknown options of a TCP router included)."""
        idx, cert = self.best(server_name)
        tcp = options is not None
        if tcp:
            opt_name = options or "default"
            if opt_name not in self.options:
                return None
        else:
            opt_name = self.host_options.get(server_name.strip().lower().rstrip("."), "default")
            if opt_name not in self.options:
                opt_name = "default"
        key = (idx, opt_name, tcp)
        ctx = self.contexts.get(key)
        if ctx is None:
            try:
                ctx = self.contexts[key] = _context(cert, self.options.get(opt_name, TLSOptions()), tcp)
            except (ssl.SSLError, ValueError, OSError):
                return None
        return ctx

    def strict(self, server_name: str) -> bool:
        opt = self.options.get(self.host_options.get(server_name.lower(), "default")) or self.options.get("default")
        return bool(opt and opt.sni_strict)


_GENERATED: list[Certificate] = []


def build_store(cfg: DynamicConfig, host_options: dict[str, str] | None = None) -> CertStore:
    store = CertStore()
    for cert in cfg.certificates:
        try:
            store.certs.append((_names(cert.cert_pem), cert))
        except ValueError as err:
            store.errors.append(f"certificate {cert.source}: {err}")
    store.certs.sort(key=lambda item: ",".join(sorted(item[0])))
    for name, tls_store in cfg.tls_stores.items():
        if tls_store.default_generated_resolver:
            store.errors.append(f"TLSStore {name}: defaultGeneratedCert (resolver {tls_store.default_generated_resolver}) "
                                "is not supported by pyk3s, which has no certificate resolvers")
        elif name != "default":
            store.errors.append(f"TLSStore {name}: only the default store is used (as in Traefik)")
    if cfg.default_certificate is not None:
        store.default = cfg.default_certificate
    else:
        if not _GENERATED:
            _GENERATED.append(default_certificate())
        store.default = _GENERATED[0]
    store.options = {"default": TLSOptions(), **dict(cfg.tls_options)}
    for name, opt in list(store.options.items()):
        problem = validate_options(opt, f"TLS option {name}")
        if problem:
            store.errors.append(problem)
            store.options.pop(name)
            store.options.setdefault("default", TLSOptions())
    store.host_options = dict(host_options or {})
    return store


def listening_context(get_store: Callable[[], CertStore]) -> ssl.SSLContext:
    """The entrypoint's context: its SNI callback switches to the current store's best context."""
    base = get_store().context_for("")
    if base is None:
        base = _context(default_certificate(), TLSOptions())

    def sni(sslobj: ssl.SSLObject, server_name: str | None, _ctx: ssl.SSLContext) -> int | None:
        store = get_store()
        name = server_name or ""
        if store.strict(name) and name and store.best(name)[0] < 0:
            return ssl.ALERT_DESCRIPTION_UNRECOGNIZED_NAME
        ctx = store.context_for(name)
        if ctx is not None:
            sslobj.context = ctx
        return None

    base.sni_callback = sni
    return base


def host_options(cfg: DynamicConfig) -> dict[str, str]:
    """Server name -> TLS option of the TLS routers whose rule names that host."""
    out: dict[str, str] = {}
    for r in cfg.routers.values():
        if r.tls is None or not r.tls.options:
            continue
        try:
            hosts = parse_rule(r.rule, r.rule_syntax or "v3").hosts or ()
        except Exception:  # noqa: BLE001 - a bad rule is reported by compile
            continue
        for h in hosts:
            out.setdefault(h, r.tls.options)
    return out
