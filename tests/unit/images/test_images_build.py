"""`pyk3s images build`: the layer writer on this machine's files, the Python root file system, and the
archive of the built-in images (names, entry points, one shared layer)."""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import re
import sys
import sysconfig
import tarfile
from pathlib import Path

import pytest

import pyk3s
from pyk3s.controllers.common.settings import KLIPPER_LB_IMAGE
from pyk3s.images import resolve_image
from pyk3s.images.builtin import BUILTIN_IMAGES, K3S_IMAGES, build_builtin_images, image_names
from pyk3s.images.oci import HostFile, LayerEntry, write_layer
from pyk3s.images.rootfs import IMAGE_VENV, Rootfs, python_rootfs, runtime_distributions

MANIFESTS = Path(pyk3s.__file__).parent / "manifests"


def test_k3s_names_are_the_tags_pyk3s_itself_deploys() -> None:
    deployed = set()
    for f in MANIFESTS.glob("*.yaml"):
        text = f.read_text()
        deployed.update(m.group(1) for m in re.finditer(r'image: "%\{SYSTEM_DEFAULT_REGISTRY\}%([^"]+)"', text))
        # a HelmChart's values: image.repository and image.tag
        deployed.update(f"{m.group(1)}:{m.group(2)}"
                        for m in re.finditer(r'repository: "([^"]+)"\s*\n\s*tag: "([^"]+)"', text))
    deployed.add(KLIPPER_LB_IMAGE)
    listed = {ref for refs in K3S_IMAGES.values() for ref in refs}
    assert listed == deployed
    for command, refs in K3S_IMAGES.items():
        for ref in refs:   # each K3s name runs the same entry point under the process runtime
            assert resolve_image(ref) == resolve_image(f"pyk3s/{command}")


def test_image_names_are_qualified_with_version_and_latest() -> None:
    names = image_names("coredns")
    assert names[1] == "docker.io/pyk3s/coredns:latest" and names[0].startswith("docker.io/pyk3s/coredns:v")
    assert "docker.io/rancher/mirrored-coredns-coredns:1.13.1" in names


def test_layer_of_host_files_keeps_modes_links_and_mtimes(tmp_path: Path) -> None:
    src = tmp_path / "src"
    (src / "private").mkdir(parents=True)
    os.chmod(src / "private", 0o700)
    (src / "private" / "tool").write_bytes(b"#!/bin/sh\n")
    os.chmod(src / "private" / "tool", 0o700)
    os.utime(src / "private" / "tool", (1_700_000_000.7, 1_700_000_000.7))
    (src / "link").symlink_to("private/tool")
    layer = write_layer([HostFile("opt/private", src / "private"), HostFile("opt/private/tool", src / "private" / "tool"),
                         HostFile("opt/link", src / "link"), LayerEntry("etc/hello", b"hi\n")], tmp_path / "l.tar.gz")
    blob = layer.path.read_bytes()
    assert layer.digest == "sha256:" + hashlib.sha256(blob).hexdigest() and layer.size == len(blob)
    raw = gzip.decompress(blob)
    assert layer.diff_id == "sha256:" + hashlib.sha256(raw).hexdigest()
    with tarfile.open(layer.path) as tar:
        members = {m.name: m for m in tar.getmembers()}
        assert list(members) == sorted(members)       # parents first
        assert members["opt"].isdir() and members["etc"].isdir()   # parents nobody listed
        assert members["opt/private"].mode == 0o755              # searchable by a container's user
        assert members["opt/private/tool"].mode == 0o744 and members["opt/private/tool"].mtime == 1_700_000_000
        assert members["opt/link"].issym() and members["opt/link"].linkname == "private/tool"
        assert tar.extractfile("etc/hello").read() == b"hi\n"  # type: ignore[union-attr]


def test_runtime_distributions_leave_the_test_extras_out() -> None:
    names = {d.metadata["Name"].lower() for d in runtime_distributions()}
    assert {"aiohttp", "grpcio", "protobuf", "pyyaml", "cryptography"} <= names
    assert not names & {"pytest", "mypy", "hypothesis", "kubernetes", "grpcio-tools"}


@pytest.mark.skipif(not Path("/usr/bin/ldd").exists(), reason="needs ldd")
def test_python_rootfs_holds_the_interpreter_its_libraries_and_pyk3s_at_host_paths() -> None:
    r = python_rootfs(tools=())
    paths = {e.path.strip("/") for e in r.entries}
    in_venv = sys.prefix != sys.base_prefix
    # a venv moves to one place of its own (a volume over its checkout's parent must not hide it)
    assert r.interpreter == (f"{IMAGE_VENV}/bin/{Path(sys.executable).name}" if in_venv else sys.executable)
    assert r.interpreter.strip("/") in paths
    if in_venv:
        assert f"{IMAGE_VENV}/pyvenv.cfg".strip("/") in paths
        assert not any(p.startswith(os.path.realpath(sys.prefix).strip("/") + "/") for p in paths)
    stdlib = sysconfig.get_paths()["stdlib"]
    real_stdlib = os.path.realpath(stdlib).strip("/")
    assert f"{real_stdlib}/os.py" in paths and f"{real_stdlib}/asyncio/base_events.py" in paths
    assert not any(p.startswith(f"{real_stdlib}/test/") or p.startswith(f"{real_stdlib}/idlelib/") for p in paths)
    assert not any(p.endswith((".opt-1.pyc", ".opt-2.pyc")) for p in paths)
    purelib = os.path.realpath(sysconfig.get_paths()["purelib"])
    if in_venv:
        purelib = IMAGE_VENV + purelib[len(os.path.realpath(sys.prefix)):]
    purelib = purelib.strip("/")
    assert f"{purelib}/pyk3s/__main__.py" in paths and f"{purelib}/aiohttp/__init__.py" in paths
    assert any(Path(lib).name == "libc.so.6" for lib in r.libraries)
    assert any(p.endswith("libc.so.6") for p in paths) and {"etc/passwd", "tmp"} <= paths
    assert r.size > 10_000_000 and not r.missing


def test_archive_has_every_built_in_image_on_one_shared_layer(tmp_path: Path) -> None:
    tiny = Rootfs((LayerEntry("etc/hello", b"hi\n"),), "/opt/pk/bin/python", (), (), ())
    built = build_builtin_images(tmp_path / "images.tar", rootfs_factory=lambda: tiny)
    with tarfile.open(built.archive) as tar:
        index = json.load(tar.extractfile("index.json"))  # type: ignore[arg-type]

        def blob(digest: str) -> dict:
            return json.load(tar.extractfile("blobs/sha256/" + digest.split(":")[1]))  # type: ignore[arg-type]
        by_name = {m["annotations"]["io.containerd.image.name"]: blob(m["digest"]) for m in index["manifests"]}
        assert set(by_name) == {n for c in BUILTIN_IMAGES for n in image_names(c)}
        layers = {layer["digest"] for m in by_name.values() for layer in m["layers"]}
        assert len(layers) == 1
        for command in BUILTIN_IMAGES:
            config = blob(by_name[image_names(command)[-1]]["config"]["digest"])["config"]
            argv = resolve_image(f"pyk3s/{command}") or ()
            assert config["Entrypoint"] == ["/opt/pk/bin/python", *argv[1:]]  # the image's own interpreter
            assert "PYTHONUNBUFFERED=1" in config["Env"]
