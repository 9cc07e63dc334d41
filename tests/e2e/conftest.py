from __future__ import annotations

import shutil
from collections.abc import Iterator

import pytest
from pyk3s_server import ServerProcess


@pytest.fixture(scope="session")
def kubectl_bin() -> str:
    path = shutil.which("kubectl")
    assert path, "kubectl is required for end-to-end tests"
    return path


@pytest.fixture(scope="module")
def api_server(kubectl_bin: str) -> Iterator[ServerProcess]:
    """A server without an agent: the API, controllers and manifests, nothing on the network."""
    srv = ServerProcess(extra_args=["--disable", "coredns,traefik,servicelb"])
    try:
        srv.start()
        yield srv
    finally:
        srv.cleanup()


@pytest.fixture(scope="module")
def cluster(kubectl_bin: str) -> Iterator[ServerProcess]:
    """A server with its embedded agent on a node address of our own."""
    srv = ServerProcess(agent=True, extra_args=["--disable", "traefik,servicelb"])
    try:
        srv.start(timeout=60)
        yield srv
    finally:
        srv.cleanup()
