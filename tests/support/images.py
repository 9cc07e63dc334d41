"""Test images built on this machine (a static busybox packed as an OCI archive) and a local registry
(Debian's ``docker-registry``, on loopback, with htpasswd auth) to push them to with ``skopeo``."""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import bcrypt

from pyk3s.images.oci import ImageSpec, LayerEntry, build_archive, busybox_entries

__all__ = ["LocalRegistry", "busybox_image", "have_tools"]

BUSYBOX = Path("/bin/busybox")


def have_tools(*names: str) -> bool:
    return all(shutil.which(n) for n in names)


def busybox_image(name: str, out: Path, cmd: tuple[str, ...] = ("sh",), index_html: str = "") -> Path:
    """An image whose root file system is the static busybox and its applets (``/www/index.html``
    holds ``index_html`` when given)."""
    applets = subprocess.run([str(BUSYBOX), "--list"], capture_output=True, text=True, check=True).stdout.split()
    extra = (LayerEntry("www/index.html", index_html.encode()),) if index_html else ()
    build_archive(ImageSpec(name, busybox_entries(BUSYBOX, applets, extra), cmd=cmd), out)
    return out


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class LocalRegistry:
    """A registry on 127.0.0.1 that wants ``user``/``password``."""
    user: str = "pk-user"
    password: str = "pk-secret"

    def __post_init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="pyk3s-registry-"))
        self.port = _free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> LocalRegistry:
        hashed = bcrypt.hashpw(self.password.encode(), bcrypt.gensalt(rounds=6)).decode()
        (self.dir / "htpasswd").write_text(f"{self.user}:{hashed}\n")
        (self.dir / "config.yml").write_text(
            "version: 0.1\nlog: {level: warn}\n"
            f"storage: {{filesystem: {{rootdirectory: {self.dir / 'data'}}}}}\n"
            f"http: {{addr: {self.host}}}\n"
            f"auth: {{htpasswd: {{realm: pyk3s-test, path: {self.dir / 'htpasswd'}}}}}\n")
        log = open(self.dir / "registry.log", "wb")  # noqa: SIM115 - the child keeps it
        self.proc = subprocess.Popen(["docker-registry", "serve", str(self.dir / "config.yml")], stdout=log,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return self
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"docker-registry did not listen on {self.host}: {self.log()}")

    def log(self) -> str:
        try:
            return (self.dir / "registry.log").read_text(errors="replace")[-3000:]
        except OSError:
            return ""

    def push(self, archive: Path, repo_tag: str) -> None:
        subprocess.run(["skopeo", "copy", "--quiet", "--dest-tls-verify=false",
                        "--dest-creds", f"{self.user}:{self.password}",
                        f"oci-archive:{archive}", f"docker://{self.host}/{repo_tag}"],
                       check=True, capture_output=True, timeout=120)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        shutil.rmtree(self.dir, ignore_errors=True)
