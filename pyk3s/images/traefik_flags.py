"""Which of Traefik's command-line flags the built-in ``pyk3s/traefik`` image honours, and why not the others.

The ingress accepts every Traefik flag so that K3s's arguments and a user's ``additionalArguments``
start it unchanged, but a flag it accepts and then ignores must be said out loud: at start the
ingress logs a warning and records a Warning event ``UnsupportedArgument`` on its own pod for each
such flag (``pyk3s.addons.ingress.config.flags``), and the helm controller lists them in the
HelmChart's status. Both read this one table, which describes the image.

``HONOURED`` is the table: a flag key (lower case, entry point names as ``<ep>``) and, optionally, a
check of its value that returns why that value is not honoured. A flag whose key is not in the table
is not honoured. Add a row when the ingress learns a flag.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

__all__ = ["HONOURED", "Unhonoured", "unhonoured"]

Check = Callable[[str], str | None]


def _address(value: str) -> str | None:
    """Entry point addresses: ``[host]:port`` with an optional ``/tcp``; UDP is not served yet."""
    _, _, proto = value.partition("/")
    if proto.lower() in ("", "tcp"):
        return None
    if proto.lower() == "udp":
        return "UDP entry points are not served by pyk3s's ingress yet (the address is bound as TCP)"
    return f"unknown protocol {proto!r}"


def _log_format(value: str) -> str | None:
    return None if value.lower() == "common" else f"log format {value!r} is not produced (logs use one text format)"


HONOURED: dict[str, Check | None] = {
    "entrypoints.<ep>.address": _address,
    "entrypoints.<ep>.asdefault": None,
    "entrypoints.<ep>.http.tls": None,
    "entrypoints.<ep>.http.tls.options": None,
    "entrypoints.<ep>.http.redirections.entrypoint.to": None,
    "entrypoints.<ep>.http.redirections.entrypoint.scheme": None,
    "entrypoints.<ep>.http.redirections.entrypoint.permanent": None,
    "entrypoints.<ep>.http.redirections.entrypoint.priority": None,
    "entrypoints.<ep>.forwardedheaders.trustedips": None,
    "entrypoints.<ep>.forwardedheaders.insecure": None,
    "api": None,
    "api.dashboard": None,
    "api.insecure": None,
    "ping": None,
    "ping.entrypoint": None,
    "metrics.prometheus": None,
    "metrics.prometheus.entrypoint": None,
    "providers.kubernetescrd": None,
    "providers.kubernetescrd.allowcrossnamespace": None,
    "providers.kubernetescrd.allowemptyservices": None,
    "providers.kubernetescrd.allowexternalnameservices": None,
    "providers.kubernetescrd.ingressclass": None,
    "providers.kubernetescrd.namespaces": None,
    "providers.kubernetesingress": None,
    "providers.kubernetesingress.allowemptyservices": None,
    "providers.kubernetesingress.allowexternalnameservices": None,
    "providers.kubernetesingress.ingressclass": None,
    "providers.kubernetesingress.namespaces": None,
    "providers.kubernetesingress.strictprefixmatching": None,
    "providers.kubernetesingress.ingressendpoint.publishedservice": None,
    "core.defaultrulesyntax": None,
    "log.level": None,
    "log.format": _log_format,
    "log.nocolor": None,  # logs are never coloured
    # pyk3s never checks for new versions nor sends usage data, whatever these say
    "global.checknewversion": None,
    "global.sendanonymoususage": None,
    # pyk3s additions
    "kubeconfig": None,
    "workers": None,
    "objects": None,
}

_EP = re.compile(r"^entrypoints\.([^.]+)\.")


@dataclass(frozen=True, slots=True)
class Unhonoured:
    flag: str
    reason: str

    def __str__(self) -> str:
        return f"{self.flag}: {self.reason}"


def _table_key(key: str) -> str:
    return _EP.sub("entrypoints.<ep>.", key)


def _why(key: str, value: str) -> str | None:
    table_key = _table_key(key)
    if table_key not in HONOURED:
        return "not honoured by pyk3s's ingress (accepted and ignored)"
    check = HONOURED[table_key]
    return check(value) if check is not None else None


def unhonoured(argv: Iterable[str]) -> list[Unhonoured]:
    """The arguments among ``argv`` (Traefik's ``--key=value`` / ``--key`` form) the ingress ignores."""
    out: list[Unhonoured] = []
    args = list(argv)
    i = 0
    while i < len(args):
        arg = args[i]
        i += 1
        if not arg.startswith("-"):
            continue
        key, sep, value = arg.lstrip("-").partition("=")
        if not sep:
            if i < len(args) and not args[i].startswith("-"):
                value = args[i]
                i += 1
            else:
                value = "true"
        reason = _why(key.lower(), value)
        if reason is not None:
            out.append(Unhonoured(arg, reason))
    return out
