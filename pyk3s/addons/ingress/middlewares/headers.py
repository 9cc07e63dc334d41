"""headers (spec 5.9): custom request/response headers, CORS, security headers.

    headers:
      customRequestHeaders: {X-Script-Name: test, X-Drop: ""}     # "" deletes
      customResponseHeaders: {X-Custom: value}
      accessControlAllowOriginList: ["https://a.example"]  accessControlAllowMethods: [GET, OPTIONS]
      accessControlAllowHeaders: [...]  accessControlExposeHeaders: [...]  accessControlAllowCredentials: true
      accessControlMaxAge: 100  addVaryHeader: true  accessControlAllowOriginListRegex: [...]
      stsSeconds: 31536000  stsIncludeSubdomains: true  stsPreload: true  forceSTSHeader: true
      frameDeny: true  customFrameOptionsValue: SAMEORIGIN  contentTypeNosniff: true  browserXssFilter: true
      contentSecurityPolicy: ...  referrerPolicy: ...  permissionsPolicy: ...  allowedHosts: [...]
"""

from __future__ import annotations

from ..config.errors import ConfigError
from ..config.goregexp import GoRegexpError, compile_go
from ..http.reply import Reply
from ..http.request import HttpRequest
from .base import BuildContext, Config, MiddlewareHandler

__all__ = ["Headers"]


class Headers(MiddlewareHandler):
    __slots__ = ("req_set", "req_del", "resp_set", "resp_del", "origins", "origin_rx", "cors", "preflight",
                 "expose", "credentials", "vary", "secure", "allowed_hosts", "sts", "force_sts")
    needs_response = True

    def __init__(self, config: Config, ctx: BuildContext | None = None) -> None:
        crh = config.get("customRequestHeaders") or {}
        crs = config.get("customResponseHeaders") or {}
        self.req_set = [(k, str(v)) for k, v in crh.items() if v not in (None, "")]
        self.req_del = [k for k, v in crh.items() if v in (None, "")]
        self.resp_set = [(k, str(v)) for k, v in crs.items() if v not in (None, "")]
        self.resp_del = [k for k, v in crs.items() if v in (None, "")]
        self.origins = [str(o) for o in config.get("accessControlAllowOriginList") or ()]
        try:
            self.origin_rx = [compile_go(r) for r in config.get("accessControlAllowOriginListRegex") or ()]
        except GoRegexpError as err:
            raise ConfigError(f"headers: invalid accessControlAllowOriginListRegex: {err}") from None
        self.cors = bool(self.origins or self.origin_rx)
        self.credentials = bool(config.get("accessControlAllowCredentials"))
        self.vary = bool(config.get("addVaryHeader"))
        self.expose = ",".join(config.get("accessControlExposeHeaders") or ())
        pre: list[tuple[str, str]] = []
        if self.credentials:
            pre.append(("Access-Control-Allow-Credentials", "true"))
        if config.get("accessControlAllowHeaders"):
            pre.append(("Access-Control-Allow-Headers", ",".join(config["accessControlAllowHeaders"])))
        if config.get("accessControlAllowMethods"):
            pre.append(("Access-Control-Allow-Methods", ",".join(config["accessControlAllowMethods"])))
        if config.get("accessControlMaxAge"):
            pre.append(("Access-Control-Max-Age", str(config["accessControlMaxAge"])))
        self.preflight = pre
        sec: list[tuple[str, str]] = []
        frame = config.get("customFrameOptionsValue") or ("DENY" if config.get("frameDeny") else "")
        if frame:
            sec.append(("X-Frame-Options", frame))
        if config.get("contentTypeNosniff"):
            sec.append(("X-Content-Type-Options", "nosniff"))
        xss = config.get("customBrowserXSSValue") or ("1; mode=block" if config.get("browserXssFilter") else "")
        if xss:
            sec.append(("X-XSS-Protection", xss))
        for key, name in (("contentSecurityPolicy", "Content-Security-Policy"),
                          ("contentSecurityPolicyReportOnly", "Content-Security-Policy-Report-Only"),
                          ("referrerPolicy", "Referrer-Policy"), ("permissionsPolicy", "Permissions-Policy"),
                          ("featurePolicy", "Feature-Policy"), ("publicKey", "Public-Key-Pins")):
            if config.get(key):
                sec.append((name, str(config[key])))
        self.secure = sec
        sts = ""
        if config.get("stsSeconds"):
            sts = f"max-age={int(config['stsSeconds'])}"
            if config.get("stsIncludeSubdomains"):
                sts += "; includeSubDomains"
            if config.get("stsPreload"):
                sts += "; preload"
        self.sts = sts
        self.force_sts = bool(config.get("forceSTSHeader"))
        self.allowed_hosts = [h.lower() for h in config.get("allowedHosts") or ()]

    def _origin_ok(self, origin: str) -> str:
        if not origin:
            return ""
        if "*" in self.origins:
            return origin if self.credentials else "*"
        if origin in self.origins or any(rx.search(origin) for rx in self.origin_rx):
            return origin
        return ""

    def on_request(self, req: HttpRequest) -> Reply | None:
        if self.allowed_hosts and req.host not in self.allowed_hosts:
            return Reply(500, [("Content-Type", "text/plain; charset=utf-8")], b"Bad Host")
        if self.cors and req.method == "OPTIONS" and req.header("origin") and req.header("access-control-request-method"):
            headers = list(self.preflight)
            allow = self._origin_ok(req.header("origin"))
            if allow:
                headers.append(("Access-Control-Allow-Origin", allow))
            return Reply(200, headers, b"")
        for k in self.req_del:
            req.del_header(k)
            if k.lower() == "x-forwarded-for":
                req.no_xff = True
        for k, v in self.req_set:
            if k.lower() == "host":
                req.authority = v
            req.set_header(k, v)
        return None

    def on_response(self, req: HttpRequest, status: int, headers: list[tuple[str, str]]) -> int:
        def put(name: str, value: str) -> None:
            low = name.lower()
            headers[:] = [(k, v) for k, v in headers if k.lower() != low]
            headers.append((name, value))

        for k in self.resp_del:
            low = k.lower()
            headers[:] = [(a, b) for a, b in headers if a.lower() != low]
        for k, v in self.resp_set:
            put(k, v)
        for k, v in self.secure:
            put(k, v)
        if self.sts and (req.tls or self.force_sts):
            put("Strict-Transport-Security", self.sts)
        if self.cors:
            allow = self._origin_ok(req.header("origin"))
            if allow:
                put("Access-Control-Allow-Origin", allow)
                if self.credentials:
                    put("Access-Control-Allow-Credentials", "true")
                if self.expose:
                    put("Access-Control-Expose-Headers", self.expose)
            if self.vary:
                headers.append(("Vary", "Origin"))
        return status
