import hashlib
from pathlib import Path

import pytest

from pyk3s.cli.token import ensure_server_token, parse_token

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
