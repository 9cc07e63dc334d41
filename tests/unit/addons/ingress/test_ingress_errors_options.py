"""errors options as Traefik 3.7 honours them (pkg/middlewares/customerrors and integration/error_pages_test.go):
statusRewrites, errorRequestHeaders and the query's {originalStatus} and {url}, through the real proxy to
loopback backends playing the service and the error pages."""

from __future__ import annotations

from typing import Any

import pytest
from ingress_support import http, service_yaml
from test_ingress_middlewares import setup

from pyk3s.addons.ingress.config.errors import ConfigError
from pyk3s.addons.ingress.middlewares import build_middleware
from pyk3s.addons.ingress.middlewares.base import BuildContext
from pyk3s.addons.ingress.middlewares.fetching import ErrorPages


def errors(**options: Any) -> dict[str, Any]:
    return {"err": {"errors": {"status": ["500-502", "503-599", "418"], "service": {"name": "pages", "port": 80},
                               "query": "/page/{status}", **options}}}


def page_headers(r: Any) -> dict[str, str]:
    return {k.lower(): v for k, v in r.json()["headers"]}


async def test_status_rewrites_change_the_status_of_the_error_page(make_proxy, backend, backend2):  # noqa: ANN001
    proxy = await make_proxy()
    proxy.load(setup(errors(statusRewrites={"418": 400, "500-502": 404},
                            query="/page/{status}?was={originalStatus}"),
                     port=backend.port, extra=service_yaml("pages", backend2.port)))
    r = await http(proxy.port, "/status/502", host="a")
    assert r.status == 404 and r.json()["name"] == "b2" and r.json()["url"] == "/page/404?was=502"
    r = await http(proxy.port, "/status/418", host="a")
    assert r.status == 400 and r.json()["url"] == "/page/400?was=418"
    r = await http(proxy.port, "/status/503", host="a")  # caught, no rewrite: its own status
    assert r.status == 503 and r.json()["url"] == "/page/503?was=503"
    r = await http(proxy.port, "/status/404", host="a")  # not caught: the backend's answer
    assert r.status == 404 and r.json()["name"] == "b1"


async def test_url_variable_is_the_query_escaped_request_url(make_proxy, backend, backend2):  # noqa: ANN001
    proxy = await make_proxy()
    proxy.load(setup(errors(query="?status={status}&url={url}"), port=backend.port,
                     extra=service_yaml("pages", backend2.port)))
    backend.status = 503
    r = await http(proxy.port, "/test?foo=bar&baz=buz", host="a")
    assert r.status == 503
    assert r.json()["url"] == "/?status=503&url=http%3A%2F%2Fa%2Ftest%3Ffoo%3Dbar%26baz%3Dbuz"


async def test_error_request_headers(make_proxy, backend, backend2):  # noqa: ANN001
    proxy = await make_proxy()
    pages = service_yaml("pages", backend2.port)
    sent = {"X-Request-Id": "trace-abc", "Authorization": "Bearer secret"}
    # not set: every request header goes to the error page service
    proxy.load(setup(errors(), port=backend.port, extra=pages))
    seen = page_headers(await http(proxy.port, "/status/503", host="a", headers=sent))
    assert seen["x-request-id"] == "trace-abc" and seen["authorization"] == "Bearer secret"
    # listed: only those
    proxy.load(setup(errors(errorRequestHeaders=["x-request-id"]), port=backend.port, extra=pages))
    r = await http(proxy.port, "/status/503", host="a", headers=sent)
    seen = page_headers(r)
    assert r.status == 503 and seen["x-request-id"] == "trace-abc" and "authorization" not in seen
    # an empty list: none
    proxy.load(setup(errors(errorRequestHeaders=[]), port=backend.port, extra=pages))
    seen = page_headers(await http(proxy.port, "/status/503", host="a", headers=sent))
    assert "x-request-id" not in seen and "authorization" not in seen
    # the backend itself still got everything
    assert {"X-Request-Id", "Authorization"} <= {k for k, _ in backend.requests[-1]["headers"]}


def _build(config: dict[str, Any]) -> ErrorPages:
    ctx = BuildContext("default-err@kubernetescrd", lambda name: None, lambda name: None)  # type: ignore[arg-type,return-value]
    mw = build_middleware("errors", {"status": ["500-599"], "service": "pages", **config}, ctx)
    assert isinstance(mw, ErrorPages)
    return mw


@pytest.mark.parametrize(("config", "message"), [
    ({"statusRewrites": {"abc": 404}}, "statusRewrites.abc: invalid status range 'abc'"),
    ({"statusRewrites": {"418": 99}}, "statusRewrites.418: 99 is not an HTTP status"),
    ({"statusRewrites": {"418": "teapot"}}, "statusRewrites.418: 'teapot' is not an HTTP status"),
    ({"statusRewrites": ["418"]}, "statusRewrites must map statuses to a status"),
    ({"errorRequestHeaders": "X-Request-Id"}, "errorRequestHeaders must be a list of header names"),
])
def test_bad_values_are_configuration_errors(config: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=f"middleware default-err@kubernetescrd: errors: {message}"):
        _build(config)


def test_rewrites_take_the_first_matching_entry_and_no_warnings() -> None:
    mw = _build({"statusRewrites": {"500,502": 404, "500-599": 503}, "errorRequestHeaders": ["X-A"]})
    assert mw.warnings == ()
    assert [mw._status_for(s) for s in (500, 501, 502, 599, 404)] == [404, 503, 404, 503, 404]
