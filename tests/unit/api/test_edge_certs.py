"""certs: PKI creation, reuse across starts, SAN regeneration, client certs, kubeconfig shape."""

from __future__ import annotations

import base64
import stat

import yaml
from cryptography import x509
from cryptography.x509.oid import NameOID

from pyk3s.api.certs import ClusterCerts, default_sans, write_kubeconfig

SANS = default_sans(hostname="vm", node_name="node1", advertise_address="10.99.0.5", tls_sans=["api.example.com"])


def _load(path):
    return x509.load_pem_x509_certificate(path.read_bytes())


def test_first_start_creates_files_with_private_modes(tmp_path):
    tls = tmp_path / "server" / "tls"
    ClusterCerts.ensure(tls, SANS)
    assert stat.S_IMODE(tls.stat().st_mode) == 0o700
    for name in ("server-ca.crt", "server-ca.key", "client-ca.crt", "client-ca.key", "serving-kube-apiserver.crt",
                 "serving-kube-apiserver.key", "client-admin.crt", "client-admin.key"):
        assert stat.S_IMODE((tls / name).stat().st_mode) == 0o600, name


def test_serving_cert_has_every_san_and_chains_to_server_ca(tmp_path):
    certs = ClusterCerts.ensure(tmp_path, SANS)
    assert {"127.0.0.1", "::1", "localhost", "vm", "node1", "10.99.0.5", "api.example.com", "kubernetes.default.svc",
            "kubernetes.default.svc.cluster.local", "10.43.0.1"} <= certs.serving_sans()
    serving = _load(certs.tls_files.cert_file)
    serving.verify_directly_issued_by(_load(tmp_path / "server-ca.crt"))


def test_reused_on_second_start(tmp_path):
    ClusterCerts.ensure(tmp_path, SANS)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    ClusterCerts.ensure(tmp_path, SANS)
    after = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    assert before == after


def test_san_change_reissues_only_the_serving_cert(tmp_path):
    ClusterCerts.ensure(tmp_path, SANS)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    certs = ClusterCerts.ensure(tmp_path, (*SANS, "extra.example.com"))
    after = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    changed = {n for n in before if before[n] != after[n]}
    assert changed == {"serving-kube-apiserver.crt", "serving-kube-apiserver.key"}
    assert "extra.example.com" in certs.serving_sans()


def test_admin_cert_identity_and_issued_client_certs(tmp_path):
    certs = ClusterCerts.ensure(tmp_path, SANS)
    admin = _load(tmp_path / "client-admin.crt")
    assert admin.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "system:admin"
    assert [a.value for a in admin.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)] == ["system:masters"]
    pem, key = certs.issue_client_cert("system:node:n1", ["system:nodes"])
    cert = x509.load_pem_x509_certificate(pem)
    cert.verify_directly_issued_by(_load(tmp_path / "client-ca.crt"))
    assert b"PRIVATE KEY" in key
    spem, _ = certs.issue_serving_cert(["10.99.0.7", "n1"])
    serving = x509.load_pem_x509_certificate(spem)
    serving.verify_directly_issued_by(_load(tmp_path / "server-ca.crt"))


def test_kubeconfig_is_k3s_shaped(tmp_path):
    certs = ClusterCerts.ensure(tmp_path / "tls", SANS)
    cert, key = certs.admin_credentials()
    path = tmp_path / "k3s.yaml"
    write_kubeconfig(path, "https://127.0.0.1:6443", certs.server_ca_pem, cert, key, mode=0o644)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    doc = yaml.safe_load(path.read_text())
    assert doc["current-context"] == "default"
    assert doc["clusters"][0]["name"] == doc["users"][0]["name"] == doc["contexts"][0]["name"] == "default"
    assert doc["clusters"][0]["cluster"]["server"] == "https://127.0.0.1:6443"
    assert base64.b64decode(doc["clusters"][0]["cluster"]["certificate-authority-data"]) == certs.server_ca_pem
    assert base64.b64decode(doc["users"][0]["user"]["client-certificate-data"]) == cert
