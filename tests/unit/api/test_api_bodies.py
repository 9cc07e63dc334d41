"""Request bodies nested past what can be decoded are a 400 with the reason, never a 500: past Go's
limit (10,000 levels) with the message kube-apiserver's decoder gives, below it naming the depth."""

from __future__ import annotations

import pytest

from pyk3s.api.bodies import GO_MAX_DEPTH, too_deep


def nested(depth: int, open_: str = '{"a":', close: str = "}") -> bytes:
    return (open_ * depth + "1" + close * depth).encode()


@pytest.mark.parametrize("depth", [GO_MAX_DEPTH + 1, 50_000])
async def test_deeper_than_kube_apiserver_allows_is_400_with_its_message(kc, depth: int) -> None:  # noqa: ANN001
    status, out, _ = await kc.call("POST", "/api/v1/namespaces/default/configmaps",
                                       raw=b'{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"x"},"data":'
                                       + nested(depth) + b"}")
    assert status == 400, out
    assert out["reason"] == "BadRequest"
    assert out["message"].endswith("invalid character '{' exceeded max depth")


async def test_deep_but_within_kube_limits_is_400_naming_the_depth(kc) -> None:  # noqa: ANN001
    status, out, _ = await kc.call("POST", "/api/v1/namespaces/default/configmaps",
                                       raw=b'{"metadata":{"name":"x"},"data":' + nested(3000, "[", "]") + b"}")
    assert status == 400, out
    assert "nested 3001 levels deep" in out["message"]


def test_depth_scan_ignores_brackets_in_strings() -> None:
    body = b'{"a":"[[[{{{\\"[[","b":' + nested(GO_MAX_DEPTH - 1, "[", "]") + b"}"
    assert "exceeded max depth" not in too_deep(body)
    assert "exceeded max depth" in too_deep(b'{"b":' + nested(GO_MAX_DEPTH, "[", "]") + b"}")
