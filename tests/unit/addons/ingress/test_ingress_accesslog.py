"""Access logs: Traefik's formats, filters and field modes (pkg/middlewares/accesslog and its tests)."""

from __future__ import annotations

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
    odd = static_from_flags(["--accesslog.format=xml", "--accesslog.otlp.http.endpoint=x"]).access_log
    assert odd is not None and odd.format == "common" and len(odd.problems) == 2
    with pytest.raises(ConfigError, match="statuscodes"):
        static_from_flags(["--accesslog.filters.statuscodes=2xx"])
