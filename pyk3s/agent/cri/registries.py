"""``registries.yaml`` (K3s's schema) and what containerd is given for it.

- ``mirrors.<registry>.endpoint``: a ``certs.d/<registry>/hosts.toml`` listing the endpoints in order;
  ``"*"`` becomes ``_default``. The registry itself stays the last fallback unless
  ``--disable-default-registry-endpoint``, then the first endpoint is the ``server``.
- ``configs.<host>.auth``: credentials in ``config.toml`` for that endpoint host.
- ``configs.<host>.tls``: ``ca``/``client``/``skip_verify`` on that host in every ``hosts.toml`` naming it
  (and a ``hosts.toml`` of its own when no mirror names it).
- ``mirrors.<registry>.rewrite``: regular expressions over the repository, applied by the kubelet to the
  reference it pulls (:func:`rewrite_image`).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

__all__ = ["RegistriesConfig", "RegistryAuth", "RegistryError", "RegistryTLS", "hosts_files", "load_registries",
           "auth_toml", "rewrite_image", "split_reference"]


class RegistryError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class RegistryAuth:
    username: str = ""
    password: str = ""
    auth: str = ""
    identity_token: str = ""


@dataclass(frozen=True, slots=True)
class RegistryTLS:
    ca_file: str = ""
    cert_file: str = ""
    key_file: str = ""
    insecure_skip_verify: bool = False


@dataclass(frozen=True, slots=True)
class RegistryMirror:
    endpoints: tuple[str, ...] = ()
    rewrites: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class RegistriesConfig:
    mirrors: dict[str, RegistryMirror] = field(default_factory=dict)
    auths: dict[str, RegistryAuth] = field(default_factory=dict)
    tls: dict[str, RegistryTLS] = field(default_factory=dict)


def _strs(value: Any, where: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise RegistryError(f"{where}: want a list of strings")
    return tuple(value)


def parse_registries(doc: Any, source: str = "registries.yaml") -> RegistriesConfig:
    if doc is None:
        return RegistriesConfig()
    if not isinstance(doc, dict):
        raise RegistryError(f"{source}: want a mapping with 'mirrors' and 'configs'")
    mirrors: dict[str, RegistryMirror] = {}
    for reg, m in (doc.get("mirrors") or {}).items():
        m = m or {}
        if not isinstance(m, dict):
            raise RegistryError(f"{source}: mirrors.{reg}: want a mapping")
        rewrites = m.get("rewrite") or {}
        if not isinstance(rewrites, dict):
            raise RegistryError(f"{source}: mirrors.{reg}.rewrite: want a mapping of regexp to replacement")
        for pattern in rewrites:
            try:
                re.compile(pattern)
            except re.error as exc:
                raise RegistryError(f"{source}: mirrors.{reg}.rewrite: bad regexp {pattern!r}: {exc}") from None
        endpoints = tuple(e if "://" in e else f"https://{e}"
                          for e in _strs(m.get("endpoint"), f"{source}: mirrors.{reg}.endpoint"))
        mirrors[str(reg)] = RegistryMirror(endpoints, tuple((str(k), str(v)) for k, v in rewrites.items()))
    auths: dict[str, RegistryAuth] = {}
    tls: dict[str, RegistryTLS] = {}
    for host, c in (doc.get("configs") or {}).items():
        c = c or {}
        if not isinstance(c, dict):
            raise RegistryError(f"{source}: configs.{host}: want a mapping")
        a = c.get("auth")
        if a:
            auths[str(host)] = RegistryAuth(str(a.get("username") or ""), str(a.get("password") or ""),
                                            str(a.get("auth") or ""), str(a.get("identitytoken") or ""))
        t = c.get("tls")
        if t:
            tls[str(host)] = RegistryTLS(str(t.get("ca_file") or ""), str(t.get("cert_file") or ""),
                                         str(t.get("key_file") or ""), bool(t.get("insecure_skip_verify")))
    return RegistriesConfig(mirrors, auths, tls)


def load_registries(path: Path) -> RegistriesConfig:
    """The parsed file; a missing file is an empty configuration, a broken one raises RegistryError."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return RegistriesConfig()
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise RegistryError(f"{path}: not valid YAML: {exc}") from None
    return parse_registries(doc, str(path))


def _q(s: str) -> str:
    return json.dumps(s)


def _host_of(endpoint: str) -> str:
    return endpoint.split("://", 1)[-1].split("/", 1)[0]


def _host_block(endpoint: str, cfg: RegistriesConfig, capabilities: tuple[str, ...]) -> list[str]:
    lines = [f"[host.{_q(endpoint)}]", f"  capabilities = {json.dumps(list(capabilities))}"]
    t = cfg.tls.get(_host_of(endpoint))
    if t is not None:
        if t.ca_file:
            lines.append(f"  ca = {_q(t.ca_file)}")
        if t.cert_file and t.key_file:
            lines.append(f"  client = [[{_q(t.cert_file)}, {_q(t.key_file)}]]")
        if t.insecure_skip_verify:
            lines.append("  skip_verify = true")
    return lines


def _default_server(registry: str) -> str:
    return "https://registry-1.docker.io" if registry == "docker.io" else f"https://{registry}"


def hosts_files(cfg: RegistriesConfig, disable_default_endpoint: bool = False) -> dict[str, str]:
    """``certs.d`` directory name -> ``hosts.toml`` text."""
    out: dict[str, str] = {}
    for reg, m in cfg.mirrors.items():
        name = "_default" if reg == "*" else reg
        endpoints = list(m.endpoints)
        lines: list[str] = []
        if disable_default_endpoint and endpoints:
            lines.append(f"server = {_q(endpoints[0])}")
        elif reg != "*":
            lines.append(f"server = {_q(_default_server(reg))}")
        for ep in endpoints:
            lines.append("")
            lines += _host_block(ep, cfg, ("pull", "resolve"))
        out[name] = "\n".join(lines) + "\n"
    named = {_host_of(ep) for m in cfg.mirrors.values() for ep in m.endpoints} | set(cfg.mirrors)
    for host in cfg.tls:
        if host not in named:
            server = f"https://{host}"
            out[host] = f"server = {_q(server)}\n\n" + "\n".join(
                _host_block(server, cfg, ("pull", "resolve", "push"))) + "\n"
    return out


def auth_toml(cfg: RegistriesConfig) -> str:
    """The ``registry.configs.<host>.auth`` tables of containerd's CRI plugin."""
    parts = []
    for host, a in sorted(cfg.auths.items()):
        rows = [f'[plugins."io.containerd.grpc.v1.cri".registry.configs.{_q(host)}.auth]']
        for key, value in (("username", a.username), ("password", a.password), ("auth", a.auth),
                           ("identitytoken", a.identity_token)):
            if value:
                rows.append(f"  {key} = {_q(value)}")
        parts.append("\n".join(rows))
    return "\n\n".join(parts) + ("\n" if parts else "")


def split_reference(image: str) -> tuple[str, str, str]:
    """(registry, repository, tag-or-digest suffix) with Docker's defaults:
    ``nginx:1`` -> (``docker.io``, ``library/nginx``, ``:1``)."""
    name, suffix = image, ""
    if "@" in name:
        name, suffix = name.split("@", 1)
        suffix = "@" + suffix
    elif name.rfind(":") > name.rfind("/"):
        name, suffix = name[: name.rfind(":")], name[name.rfind(":"):]
    first, _, rest = name.partition("/")
    if rest and ("." in first or ":" in first or first == "localhost"):
        registry, repo = first, rest
    else:
        registry, repo = "docker.io", name
    if registry == "docker.io" and "/" not in repo:
        repo = "library/" + repo
    return registry, repo, suffix or ":latest"


def rewrite_image(image: str, cfg: RegistriesConfig) -> str:
    """The reference to pull after the mirror's ``rewrite`` rules (first match wins), or ``image``."""
    registry, repo, suffix = split_reference(image)
    mirror = cfg.mirrors.get(registry) or cfg.mirrors.get("*")
    if mirror is None:
        return image
    for pattern, repl in mirror.rewrites:
        if re.search(pattern, repo):
            new_repo = re.sub(pattern, re.sub(r"\$(\d+)", r"\\\1", repl), repo, count=1)
            return f"{registry}/{new_repo}{suffix}"
    return image
