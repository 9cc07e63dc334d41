"""Built-in "images": container image names that map to Python entry points.

There is no registry to pull from, so a container whose image is in :data:`IMAGES` and that has no
``command`` runs the mapped argv prefix (plus the container's ``args``). K3s's upstream image names are
accepted as aliases so K3s-style manifests run unchanged. Tags and digests are ignored.
"""

from __future__ import annotations

import sys

__all__ = ["IMAGES", "image_name", "resolve_image"]


def _pyk3s(sub: str) -> tuple[str, ...]:
    return (sys.executable, "-m", "pyk3s", sub)


IMAGES: dict[str, tuple[str, ...]] = {
    "pyk3s/whoami": _pyk3s("whoami"),
    "traefik/whoami": _pyk3s("whoami"),
    "containous/whoami": _pyk3s("whoami"),
    "pyk3s/whoamitcp": _pyk3s("whoamitcp"),
    "traefik/whoamitcp": _pyk3s("whoamitcp"),
    "containous/whoamitcp": _pyk3s("whoamitcp"),
    "pyk3s/whoamiudp": _pyk3s("whoamiudp"),
    "traefik/whoamiudp": _pyk3s("whoamiudp"),
    "containous/whoamiudp": _pyk3s("whoamiudp"),
    "pyk3s/coredns": _pyk3s("coredns"),
    "rancher/mirrored-coredns-coredns": _pyk3s("coredns"),
    "coredns/coredns": _pyk3s("coredns"),
    "pyk3s/traefik": _pyk3s("traefik"),
    "rancher/mirrored-library-traefik": _pyk3s("traefik"),
    "traefik": _pyk3s("traefik"),
    "pyk3s/klipper-lb": _pyk3s("klipper-lb"),
    "rancher/klipper-lb": _pyk3s("klipper-lb"),
}

_REGISTRY_PREFIXES = ("docker.io/library/", "docker.io/", "registry.k8s.io/", "ghcr.io/")


def image_name(image: str) -> str:
    """Strip registry host, tag and digest: ``docker.io/traefik/whoami:v1.10`` -> ``traefik/whoami``."""
    name = image.split("@", 1)[0]
    slash = name.rfind("/")
    colon = name.rfind(":")
    if colon > slash:
        name = name[:colon]
    for prefix in _REGISTRY_PREFIXES:
        if name.startswith(prefix):
            name = name[len(prefix):]
            break
    else:
        first, _, rest = name.partition("/")
        if rest and ("." in first or ":" in first or first == "localhost"):
            name = rest  # a private registry host such as "my.registry:5000/rancher/klipper-lb"
    return name


def resolve_image(image: str) -> tuple[str, ...] | None:
    """The argv prefix for a built-in image, or None when pyk3s does not ship it."""
    return IMAGES.get(image_name(image))
