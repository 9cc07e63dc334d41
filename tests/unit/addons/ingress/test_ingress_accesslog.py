"""Access logs: Traefik's formats, filters and field modes (pkg/middlewares/accesslog and its tests)."""

from __future__ import annotations

import asyncio
import calendar
import json
import os

import pytest

from pyk3s.addons.ingress.config.errors import ConfigError
from pyk3s.addons.ingress.config.static import AccessLogOptions, static_from_flags
from pyk3s.addons.ingress.proxy import accesslog
from pyk3s.addons.ingress.proxy.accesslog import AccessLogWriter, AccessRecord, format_common

START = float(calendar.timegm((2009, 11, 10, 23, 0, 0)))


def _writer(tmp_path, **kw) -> tuple[AccessLogWriter, str]:
    path = str(tmp_path / "logs" / "access.log")
    return AccessLogWriter(AccessLogOptions(file_path=path, **kw)), path


def _record(**kw) -> AccessRecord:
    base = dict(start=START, duration=123.0, client_addr="10.0.0.1:5555", method="GET", path="/foo",
                protocol="http", status=123, response_size=132, router="foo", service_url="http://10.0.0.2/toto",
                username="Client", request_headers=(("Referer", "referer"), ("User-Agent", "agent")))
    base.update(kw)
    return AccessRecord(**base)


def test_common_format_all_data():
    # TestCommonLogFormatter_Format "all data" (RequestCount nil there; the writer numbers records)
    fields = _record().fields()
    fields["request_Referer"], fields["request_User-Agent"] = "referer", "agent"
    del fields["RequestCount"]
    assert format_common(fields) == ('10.0.0.1 - Client [10/Nov/2009:23:00:00 +0000] "GET /foo http" 123 132 '
                                     '"referer" "agent" - "foo" "http://10.0.0.2/toto" 123000ms\n')


def test_common_format_missing_values():
    # "DownstreamStatus & DownstreamContentSize are nil": dashes, quoted dashes for strings
    fields = AccessRecord(start=START, duration=123.0, client_addr="10.0.0.1:1", method="GET", path="/foo",
                          protocol="http", username="Client").fields(count=0)
    for key in ("DownstreamStatus", "DownstreamContentSize"):
        fields[key] = None
    assert format_common(fields) == ('10.0.0.1 - Client [10/Nov/2009:23:00:00 +0000] "GET /foo http" - - "-" "-" 0 '
                                     '"-" "-" 123000ms\n')


def test_generic_clf():
    w = AccessLogWriter(AccessLogOptions(format="genericCLF", headers_default_mode="keep"), fd=-1)
    assert w.render(_record(), 7) == ('10.0.0.1 - Client [10/Nov/2009:23:00:00 +0000] "GET /foo http" 123 132 '
                                      '"referer" "agent"\n')


def test_tcp_connection_record():
    w = AccessLogWriter(AccessLogOptions(), fd=-1)
    rec = AccessRecord(start=START, duration=0.25, client_addr="[fd00::1]:4000", entrypoint="websecure",
                       router="default-db-abc@kubernetescrd", service_url="10.42.0.5:5432", protocol="TCP",
                       scheme="tls", request_addr="db.example.com", request_size=10, response_size=20)
    assert w.render(rec, 3) == ('fd00::1 - - [10/Nov/2009:23:00:00 +0000] "- - TCP" - 20 "-" "-" 3 '
                                '"default-db-abc@kubernetescrd" "10.42.0.5:5432" 250ms\n')


def test_json_format_fields_and_types(tmp_path):
    w, path = _writer(tmp_path, format="json", headers_default_mode="keep",
                      header_names={"user-agent": "redact"}, field_names={"clientusername": "drop"})
    w.log(_record(origin_status=123, origin_size=132, origin_duration=1.0, retry_attempts=2,
                  downstream_headers=(("content-type", "text/plain; charset=utf-8"),)))
    w.close()
    line = json.loads(open(path).read())
    assert line["DownstreamStatus"] == 123 and line["OriginStatus"] == 123
    assert line["Duration"] == 123_000_000_000 and line["Overhead"] == 122_000_000_000
    assert line["StartUTC"] == "2009-11-10T23:00:00Z"
    assert line["ClientHost"] == "10.0.0.1" and line["ClientPort"] == "5555" and line["ClientAddr"] == "10.0.0.1:5555"
    assert "ClientUsername" not in line
    assert line["request_User-Agent"] == "REDACTED" and line["request_Referer"] == "referer"
    assert line["downstream_Content-Type"] == "text/plain; charset=utf-8"
    assert line["RequestCount"] == 1 and line["RetryAttempts"] == 2
    assert line["level"] == "info" and line["msg"] == "" and line["time"]


def test_headers_dropped_by_default_and_query_dropped(tmp_path):
    w = AccessLogWriter(AccessLogOptions(format="json", query_parameters_mode="drop"), fd=-1)
    line = json.loads(w.render(_record(path="/foo?a=1&b=2"), 1))
    assert line["RequestPath"] == "/foo"
    assert not any(k.startswith("request_") for k in line)


@pytest.mark.parametrize(("opts", "record", "kept"), [
    (dict(), dict(status=500), True),
    (dict(status_codes=("200", "300-302")), dict(status=301), True),
    (dict(status_codes=("200", "300-302")), dict(status=404), False),
    (dict(retry_attempts=True), dict(status=200, retry_attempts=1), True),
    (dict(retry_attempts=True), dict(status=200), False),
    (dict(min_duration=0.01), dict(duration=0.02), True),
    (dict(min_duration=0.01), dict(duration=0.005), False),
], ids=["no-filter", "status-in-range", "status-out", "retried", "not-retried", "slow", "fast"])
def test_filters(opts, record, kept):
    w = AccessLogWriter(AccessLogOptions(**opts), fd=-1)
    assert w.keeps(_record(**record)) is kept


def test_module_entry_point(tmp_path):
    w, path = _writer(tmp_path)
    assert accesslog.active() is None
    accesslog.log(_record())  # off: nothing happens
    accesslog.install(w)
    try:
        accesslog.log(_record())
        accesslog.log(_record(status=200))
    finally:
        accesslog.install(None)
    lines = open(path).read().splitlines()
    assert len(lines) == 2 and lines[0].endswith('1 "foo" "http://10.0.0.2/toto" 123000ms')
    assert os.stat(path).st_mode & 0o777 == 0o664 & ~_umask()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_flags():
    s = static_from_flags(["--accesslog=true", "--accesslog.format=json", "--accesslog.filters.statuscodes=200,300-302",
                           "--accesslog.filters.minduration=10ms", "--accesslog.fields.names.ClientUsername=drop",
                           "--accesslog.fields.headers.names.User-Agent=redact"])
    assert s.access_log == AccessLogOptions(format="json", status_codes=("200", "300-302"), min_duration=0.01,
                                            field_names={"clientusername": "drop"}, header_names={"user-agent": "redact"})
    assert static_from_flags([]).access_log is None
    assert static_from_flags(["--accesslog=false", "--accesslog.format=json"]).access_log is None
    odd = static_from_flags(["--accesslog.format=xml", "--accesslog.fields.headers.defaultmode=hide"]).access_log
    assert odd is not None and odd.format == "common" and odd.headers_default_mode == "drop"  # Traefik's fallbacks
    with pytest.raises(ConfigError, match="statuscodes"):
        static_from_flags(["--accesslog.filters.statuscodes=2xx"])


# ---------------------------------------------------------------- through the proxy
INGRESS = """
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: web, namespace: default}
spec:
  rules:
  - host: a.example
    http:
      paths: [{path: /, pathType: Prefix, backend: {service: {name: whoami, port: {number: 80}}}}]
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: quiet
  namespace: default
  annotations: {traefik.ingress.kubernetes.io/router.observability.accesslogs: "false"}
spec:
  rules:
  - host: quiet.example
    http:
      paths: [{path: /, pathType: Prefix, backend: {service: {name: whoami, port: {number: 80}}}}]
"""


async def _lines(proxy, path) -> list[str]:
    await asyncio.sleep(0)
    proxy.state.access_log.flush()
    return path.read_text().splitlines()


async def test_proxy_writes_json_records(make_proxy, backend, tmp_path):
    from ingress_support import http, service_yaml

    path = tmp_path / "access.json"
    proxy = await make_proxy("--entrypoints.web.address=127.0.0.1:0", "--providers.kubernetesingress",
                             "--providers.kubernetescrd", "--accesslog=true", "--accesslog.format=json",
                             f"--accesslog.filepath={path}", "--accesslog.fields.headers.defaultmode=keep",
                             "--accesslog.fields.headers.names.User-Agent=redact")
    proxy.load(service_yaml("whoami", backend.port) + INGRESS)
    r = await http(proxy.port, "/hello?x=1", host="a.example", headers={"User-Agent": "t/1"})
    assert r.status == 200
    assert (await http(proxy.port, "/", host="quiet.example")).status == 200  # observability.accessLogs: false
    assert (await http(proxy.port, "/", host="nobody.example")).status == 404
    lines = [json.loads(line) for line in await _lines(proxy, path)]
    assert len(lines) == 2, lines
    ok, missing = lines
    assert ok["RouterName"] == "default-web-a-example@kubernetes" and ok["ServiceName"] == "default-whoami-80@kubernetes"
    assert ok["DownstreamStatus"] == 200 and ok["OriginStatus"] == 200 and ok["DownstreamContentSize"] == len(r.body)
    assert ok["RequestPath"] == "/hello?x=1" and ok["RequestMethod"] == "GET" and ok["RequestProtocol"] == "HTTP/1.1"
    assert ok["RequestHost"] == "a.example" and ok["ClientHost"] == "127.0.0.1" and ok["entryPointName"] == "web"
    assert ok["ServiceURL"] == f"http://127.0.0.1:{backend.port}" and ok["ServiceAddr"] == f"127.0.0.1:{backend.port}"
    assert ok["KubernetesIngressName"] == "web" and ok["KubernetesServiceName"] == "whoami"
    assert ok["request_User-Agent"] == "REDACTED" and "origin_Content-Type" in ok
    assert missing["DownstreamStatus"] == 404 and "RouterName" not in missing and missing["OriginStatus"] == 0


async def test_proxy_common_format_and_status_filter(make_proxy, backend, tmp_path):
    from ingress_support import http, service_yaml

    path = tmp_path / "access.log"
    proxy = await make_proxy("--entrypoints.web.address=127.0.0.1:0", "--providers.kubernetesingress",
                             f"--accesslog.filepath={path}", "--accesslog.filters.statuscodes=400-499")
    proxy.load(service_yaml("whoami", backend.port) + INGRESS)
    assert (await http(proxy.port, "/", host="a.example")).status == 200  # filtered out
    assert (await http(proxy.port, "/status/418", host="a.example")).status == 418
    (line,) = await _lines(proxy, path)
    assert line.startswith('127.0.0.1 - - [') and '"GET /status/418 HTTP/1.1" 418 ' in line
    assert line.endswith('ms') and '"default-web-a-example@kubernetes"' in line
    assert f'"http://127.0.0.1:{backend.port}"' in line


async def test_fast_lane_records(make_proxy, backend, tmp_path):
    """Without header fields the fast lane stays on and writes the same record as the general path."""
    from ingress_support import http, service_yaml

    path = tmp_path / "access.json"
    proxy = await make_proxy("--entrypoints.web.address=127.0.0.1:0", "--providers.kubernetesingress",
                             "--accesslog.format=json", f"--accesslog.filepath={path}")
    proxy.load(service_yaml("whoami", backend.port) + INGRESS)
    fast = await http(proxy.port, "/fast?q=1", host="a.example")
    slow = await http(proxy.port, "/slow?q=1", host="a.example", method="POST", body=b"abc")
    assert fast.status == slow.status == 200
    recs = {r["RequestMethod"]: r for r in map(json.loads, await _lines(proxy, path))}
    for method, resp in (("GET", fast), ("POST", slow)):
        r = recs[method]
        assert r["DownstreamStatus"] == r["OriginStatus"] == 200, r
        assert r["DownstreamContentSize"] == r["OriginContentSize"] == len(resp.body)
        assert r["RequestHost"] == "a.example" and r["RouterName"] == "default-web-a-example@kubernetes"
        assert r["ServiceURL"] == f"http://127.0.0.1:{backend.port}" and r["KubernetesIngressName"] == "web"
        assert not any(k.startswith(("request_", "origin_", "downstream_")) for k in r)
    assert recs["GET"]["RequestPath"] == "/fast?q=1" and recs["POST"]["RequestContentSize"] == 3
