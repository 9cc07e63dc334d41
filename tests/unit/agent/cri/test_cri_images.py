"""OCI archives, the pause program, the air-gap folder, the containerd config, and the generated CRI code."""

from __future__ import annotations

import hashlib
import json
import struct
import tarfile
from pathlib import Path

from pyk3s.agent.cri import gen
from pyk3s.agent.cri.airgap import archives
from pyk3s.agent.cri.containerd import ContainerdConfig, render_config
from pyk3s.agent.cri.registries import parse_registries
from pyk3s.agent.cri.settings import ContainerdPaths
from pyk3s.images.oci import ImageSpec, LayerEntry, build_archive, pause_program, qualify


def test_archive_is_an_oci_layout_with_a_docker_manifest(tmp_path: Path) -> None:
    out = tmp_path / "img.tar"
    spec = ImageSpec("pyk3s.test/x:1", (LayerEntry("bin"), LayerEntry("bin/hi", b"#!/bin/sh\n", 0o755),
                                        LayerEntry("bin/sh", link="hi")), entrypoint=("/bin/hi",))
    digest = build_archive(spec, out)
    with tarfile.open(out) as tar:
        names = set(tar.getnames())
        index = json.load(tar.extractfile("index.json"))  # type: ignore[arg-type]
        manifest_blob = tar.extractfile(f"blobs/sha256/{digest.split(':')[1]}").read()  # type: ignore[union-attr]
        manifest = json.loads(manifest_blob)
        config = json.loads(tar.extractfile(  # type: ignore[union-attr]
            "blobs/sha256/" + manifest["config"]["digest"].split(":")[1]).read())
        docker = json.load(tar.extractfile("manifest.json"))  # type: ignore[arg-type]
    assert {"oci-layout", "index.json", "manifest.json"} <= names
    assert "sha256:" + hashlib.sha256(manifest_blob).hexdigest() == digest
    assert index["manifests"][0]["annotations"]["io.containerd.image.name"] == "pyk3s.test/x:1"
    assert config["config"]["Entrypoint"] == ["/bin/hi"] and config["os"] == "linux"
    assert docker[0]["RepoTags"] == ["pyk3s.test/x:1"]


def test_qualify() -> None:
    assert qualify("busybox") == "docker.io/library/busybox:latest"
    assert qualify("pyk3s/pause:3.10") == "docker.io/pyk3s/pause:3.10"
    assert qualify("127.0.0.1:5000/a/b:1") == "127.0.0.1:5000/a/b:1"


def test_pause_program_is_a_tiny_static_elf() -> None:
    for machine, e_machine in (("x86_64", 0x3E), ("aarch64", 0xB7)):
        elf = pause_program(machine)
        assert elf[:4] == b"\x7fELF" and struct.unpack_from("<H", elf, 18)[0] == e_machine
        assert struct.unpack_from("<I", elf, 64)[0] == 1  # one PT_LOAD
        assert len(elf) < 200


def test_air_gap_folder_takes_tar_gz_and_zst(tmp_path: Path) -> None:
    for name in ("a.tar", "b.tar.gz", "c.tar.zst", "notes.txt", "d.tgz"):
        (tmp_path / name).write_bytes(b"")
    assert [p.name for p in archives(tmp_path)] == ["a.tar", "b.tar.gz", "c.tar.zst", "d.tgz"]
    assert archives(tmp_path / "missing") == []


def test_containerd_config_names_pyk3s_paths_and_registry_auth(tmp_path: Path) -> None:
    paths = ContainerdPaths(tmp_path)
    text = render_config(ContainerdConfig(paths, "docker.io/pyk3s/pause:3.10", 12345, restrict_oom_score_adj=True),
                         parse_registries({"configs": {"r:5000": {"auth": {"username": "u", "password": "p"}}}}))
    assert f'root = "{tmp_path}/agent/containerd"' in text and f'address = "{paths.socket}"' in text
    assert 'sandbox_image = "docker.io/pyk3s/pause:3.10"' in text and 'stream_server_port = "12345"' in text
    assert f'bin_dir = "{tmp_path}/agent/bin"' in text and f'config_path = "{paths.certs_d}"' in text
    assert "restrict_oom_score_adj = true" in text and 'configs."r:5000".auth]' in text


def test_generated_cri_code_matches_the_proto(tmp_path: Path) -> None:
    gen.generate(tmp_path)
    here = Path(gen.__file__).parent
    for name in ("api_pb2.py", "api_pb2_grpc.py"):
        assert (tmp_path / "pyk3s/agent/cri" / name).read_text() == (here / name).read_text(), \
            f"{name} is stale: run python -m pyk3s.agent.cri.gen"
