import hashlib
from pathlib import Path

import pytest

from pyk3s.k3s.token import (
    ensure_server_token,
    join_token_matches,
    parse_token,
    read_token_flags,
    server_token_forms,
)

CA = b"-----BEGIN CERTIFICATE-----\nfake\n-----END CERTIFICATE-----\n"


def test_secure_and_short_forms() -> None:
    h = hashlib.sha256(CA).hexdigest()
    tok = parse_token(f"K10{h}::server:abc")
    assert (tok.user, tok.password, tok.ca_hash) == ("server", "abc", h)
    assert tok.ca_matches(CA) and not tok.ca_matches(b"other")
    short = parse_token("abc")
    assert short.password == "abc" and short.ca_matches(b"anything")
    with pytest.raises(ValueError):
        parse_token("K10abc::server")


def test_server_token_file_is_kept_and_linked(tmp_path: Path) -> None:
    first = ensure_server_token(tmp_path, CA, "")
    assert first.startswith("K10" + hashlib.sha256(CA).hexdigest() + "::server:")
    assert (tmp_path / "token").read_text().strip() == first
    assert (tmp_path / "node-token").is_symlink()
    assert ensure_server_token(tmp_path, CA, "") == first  # reused across restarts
    given = ensure_server_token(tmp_path, CA, "mysecret")
    assert given.endswith("::server:mysecret")
    with pytest.raises(ValueError, match="--token"):
        ensure_server_token(tmp_path, CA, "K10deadbeef::server:x")


def test_api_accepts_the_whole_server_token_or_its_password() -> None:
    h = hashlib.sha256(CA).hexdigest()
    assert server_token_forms(f"K10{h}::server:pw") == (f"K10{h}::server:pw", "pw")
    assert server_token_forms("pw") == ("pw",)
    assert server_token_forms("") == ()


def test_join_endpoint_refuses_a_token_of_another_cluster() -> None:
    h = hashlib.sha256(CA).hexdigest()
    known = f"K10{h}::server:pw"
    assert join_token_matches(known, known)
    assert join_token_matches("pw", known)
    assert join_token_matches(f"K10{h}::node:pw", known)
    assert not join_token_matches("K10" + "0" * 64 + "::server:pw", known)  # other CA, same password
    assert not join_token_matches("other", known)
    assert not join_token_matches("", known) and not join_token_matches("pw", "")


def test_token_file_flag(tmp_path: Path) -> None:
    (tmp_path / "t").write_text("secret\n")
    assert read_token_flags("given", "") == "given"
    assert read_token_flags("given", str(tmp_path / "t")) == "secret"
    with pytest.raises(ValueError, match="--token-file /nonexistent/t"):
        read_token_flags("", "/nonexistent/t")
