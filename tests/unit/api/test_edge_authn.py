"""authn: client certificates, the server token, service-account JWTs, anonymous paths."""

from __future__ import annotations

import time

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from pyk3s.api.authn import (
    ANONYMOUS,
    Authenticator,
    ServiceAccountTokens,
    anonymous_allowed,
    unauthorized_status,
    user_from_certificate,
)
from pyk3s.api.certs import ClusterCerts, default_sans

TOKEN = "K10abc::server:s3cret"


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    return ClusterCerts.ensure(tmp_path_factory.mktemp("tls"), default_sans(hostname="vm"))


@pytest.fixture(scope="module")
def sa(tmp_path_factory):
    return ServiceAccountTokens.load_or_create(tmp_path_factory.mktemp("sa") / "service.key")


def _der(pem: bytes) -> bytes:
    return x509.load_pem_x509_certificate(pem).public_bytes(serialization.Encoding.DER)


def test_client_cert_user_is_cn_and_groups_are_orgs(certs):
    pem, _ = certs.issue_client_cert("alice", ["devs", "ops"])
    user = Authenticator().authenticate({}, _der(pem))
    assert user is not None
    assert user.name == "alice"
    assert user.groups == ("devs", "ops", "system:authenticated")
    admin, _ = certs.admin_credentials()
    assert user_from_certificate(_der(admin)).is_admin


@pytest.mark.parametrize("presented", [TOKEN, "s3cret"], ids=["full", "password"])
def test_server_token_is_admin(presented):
    user = Authenticator(server_token=TOKEN).authenticate({"authorization": f"Bearer {presented}"}, None)
    assert user is not None and user.is_admin


def test_wrong_token_is_rejected_even_with_a_cert(certs):
    pem, _ = certs.issue_client_cert("alice", [])
    auth = Authenticator(server_token=TOKEN)
    assert auth.authenticate({"authorization": "Bearer nope"}, _der(pem)) is None
    assert auth.authenticate({"authorization": "Basic abc"}, None) is None
    assert auth.authenticate({}, None) is None


def test_service_account_token_round_trip(sa):
    token = sa.issue("team", "builder", expiration_seconds=3600, bound_pod={"name": "p1", "uid": "u1"}, sa_uid="sa-uid")
    user = Authenticator(sa_tokens=sa).authenticate({"authorization": f"Bearer {token}"}, None)
    assert user is not None
    assert user.name == "system:serviceaccount:team:builder"
    assert user.groups == ("system:serviceaccounts", "system:serviceaccounts:team", "system:authenticated")
    assert user.uid == "sa-uid"
    claims = sa.verify(token)
    assert claims is not None and claims.pod_name == "p1" and claims.audiences[0].startswith("https://kubernetes")


def test_service_account_token_rejections(sa, tmp_path):
    now = time.time()
    expired = sa.issue("ns", "a", expiration_seconds=600, now=now - 10_000)
    assert sa.verify(expired) is None
    other_aud = sa.issue("ns", "a", audiences=["vault"])
    assert sa.verify(other_aud) is None
    assert sa.verify(other_aud, audiences=["vault"]) is not None
    foreign = ServiceAccountTokens.load_or_create(tmp_path / "other.key").issue("ns", "a")
    assert sa.verify(foreign) is None
    good = sa.issue("ns", "a")
    head, body, sig = good.split(".")
    assert sa.verify(f"{head}.{body}x.{sig}") is None


def test_key_is_reused(tmp_path):
    a = ServiceAccountTokens.load_or_create(tmp_path / "service.key")
    b = ServiceAccountTokens.load_or_create(tmp_path / "service.key")
    assert b.verify(a.issue("ns", "x")) is not None


@pytest.mark.parametrize("path,ok", [("/healthz", True), ("/readyz/ping", True), ("/version", True),
                                     ("/livez", True), ("/api", False), ("/api/v1/pods", False)])
def test_anonymous_paths(path, ok):
    assert anonymous_allowed(path) is ok


def test_unauthorized_status_and_anonymous_user():
    st = unauthorized_status()
    assert (st["code"], st["reason"], st["message"]) == (401, "Unauthorized", "Unauthorized")
    assert ANONYMOUS.groups == ("system:unauthenticated",)
