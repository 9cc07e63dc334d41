"""The built-in images as real OCI images (``pyk3s images build``): one archive for the air-gap folder
(``<data-dir>/agent/images``) holding whoami, coredns, traefik and klipper-lb, each under pyk3s's
names and under the K3s names and tags the packaged manifests and ServiceLB use, all sharing one
layer: this machine's Python with pyk3s (:mod:`pyk3s.images.rootfs`). An image's entry point is the
argv the process runtime runs for that image, so a pod behaves alike under either runtime, and a K3s
node that imports the archive runs pyk3s's add-ons from it.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from pyk3s.images import resolve_image
from pyk3s.images.oci import DEFAULT_PATH, ImageConfig, oci_arch, qualify, write_images, write_layer
from pyk3s.images.rootfs import Rootfs, python_rootfs
from pyk3s.k3s.version import PYK3S_VERSION

__all__ = ["BUILTIN_IMAGES", "K3S_IMAGES", "BuiltImages", "archive_name", "build_builtin_images", "image_names"]

# entry point (``pyk3s <command>``) -> the K3s image references that run it, with the tags K3s's
# packaged manifests and ServiceLB name (a unit test keeps them equal to pyk3s's own manifests)
K3S_IMAGES: dict[str, tuple[str, ...]] = {
    "whoami": (),
    "coredns": ("rancher/mirrored-coredns-coredns:1.13.1",),
    "traefik": ("rancher/mirrored-library-traefik:3.5.1",),
    "klipper-lb": ("rancher/klipper-lb:v0.4.13",),
}
BUILTIN_IMAGES = tuple(K3S_IMAGES)


def image_names(command: str) -> tuple[str, ...]:
    """Every reference the image of ``pyk3s <command>`` is imported under (fully qualified)."""
    own = (f"pyk3s/{command}:v{PYK3S_VERSION}", f"pyk3s/{command}:latest")
    return tuple(qualify(n) for n in (*own, *K3S_IMAGES[command]))


def archive_name() -> str:
    return f"pyk3s-images-{oci_arch()}.tar"


@dataclass(frozen=True, slots=True)
class BuiltImages:
    archive: Path
    images: dict[str, tuple[str, ...]]     # command -> names
    rootfs: Rootfs
    layer_size: int                          # compressed bytes of the shared layer


def build_builtin_images(out: Path, rootfs_factory: Callable[[], Rootfs] = python_rootfs) -> BuiltImages:
    """Write the archive at ``out`` (replaced whole, so an agent never imports half a file)."""
    rootfs = rootfs_factory()
    images = {command: image_names(command) for command in BUILTIN_IMAGES}
    with tempfile.TemporaryDirectory(prefix="pyk3s-images-", dir=out.parent if out.parent.exists() else None) as tmp:
        layer = write_layer(rootfs.entries, Path(tmp) / "rootfs.tar.gz")
        rows = []
        for command, names in images.items():
            argv = resolve_image(f"pyk3s/{command}")
            assert argv is not None, command
            labels = {"org.opencontainers.image.title": f"pyk3s {command}",
                      "org.opencontainers.image.version": PYK3S_VERSION,
                      "io.pyk3s.interpreter": rootfs.interpreter}
            # unbuffered: logs reach the CRI log file line by line, as the process runtime's do
            env = (DEFAULT_PATH, "PYTHONUNBUFFERED=1", "PYTHONDONTWRITEBYTECODE=1")
            entrypoint = (rootfs.interpreter, *argv[1:])   # the interpreter where the image keeps it
            rows.append((ImageConfig(names, entrypoint=entrypoint, env=env, labels=labels), [layer]))
        write_images(rows, out)
    return BuiltImages(out, images, rootfs, layer.size)
