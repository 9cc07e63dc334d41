"""HTTP middlewares: one module per kind, registered in the MIDDLEWARES table (spec §5).

``build_middleware(kind, config, ctx)`` validates a middleware's configuration once and returns the
object the proxy calls per request (interface in ``base.py``). ``ipWhiteList`` is the v2 spelling of
``ipAllowList``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from ..config.errors import ConfigError
from .base import BuildContext, Config, MiddlewareHandler
from .basicauth import BasicAuth
from .compress import Compress
from .digestauth import DigestAuth
from .fetching import ErrorPages
from .forward_auth import ForwardAuth
from .gatewayapi import RequestHeaderModifier, RequestRedirect, ResponseHeaderModifier, URLRewrite
from .grpcweb import GrpcWeb
from .headers import Headers
from .ipallowlist import IPAllowList
from .limits import InFlightReq, RateLimit
from .misc import Buffering, Chain, Retry
from .paths import AddPrefix, ReplacePath, ReplacePathRegex, StripPrefix, StripPrefixRegex
from .redirect import RedirectRegex, RedirectScheme

__all__ = ["MIDDLEWARES", "build_middleware"]

MIDDLEWARES: dict[str, Callable[[Config, BuildContext], MiddlewareHandler]] = {
    "basicAuth": BasicAuth,
    "digestAuth": DigestAuth,
    "stripPrefix": StripPrefix,
    "stripPrefixRegex": StripPrefixRegex,
    "addPrefix": AddPrefix,
    "replacePath": ReplacePath,
    "replacePathRegex": ReplacePathRegex,
    "redirectScheme": RedirectScheme,
    "redirectRegex": RedirectRegex,
    "headers": Headers,
    "ipAllowList": IPAllowList,
    "ipWhiteList": IPAllowList,
    "rateLimit": RateLimit,
    "inFlightReq": InFlightReq,
    "retry": Retry,
    "chain": Chain,
    "compress": Compress,
    "errors": ErrorPages,
    "forwardAuth": ForwardAuth,
    "buffering": Buffering,
    "grpcWeb": GrpcWeb,
    # the Gateway API filters (kubernetesGateway provider)
    "requestHeaderModifier": RequestHeaderModifier,
    "responseHeaderModifier": ResponseHeaderModifier,
    "requestRedirect": RequestRedirect,
    "urlRewrite": URLRewrite,
}


def build_middleware(kind: str, config: Config, ctx: BuildContext) -> MiddlewareHandler:
    factory = MIDDLEWARES.get(kind)
    if factory is None:
        raise ConfigError(f"ingress: middleware {ctx.name}: unsupported middleware type {kind!r}")
    if not isinstance(config, Mapping):
        raise ConfigError(f"ingress: middleware {ctx.name}: {kind} must be an object")
    try:
        return factory(config, ctx)
    except ConfigError as err:
        msg = str(err).removeprefix("ingress: ")
        raise ConfigError(f"ingress: middleware {ctx.name}: {msg}") from None
    except (TypeError, ValueError, KeyError) as err:
        raise ConfigError(f"ingress: middleware {ctx.name}: invalid {kind} configuration: {err}") from None
