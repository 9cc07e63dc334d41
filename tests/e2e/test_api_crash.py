"""Durability: ``kill -9`` the server while clients write; after a restart on the same data dir every
create the server acknowledged (201) is there."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
from pyk3s_server import ServerProcess

pytestmark = pytest.mark.e2e

WRITERS = 4
KILL_AFTER = 120      # acknowledged creates before the kill
MAX_PER_WRITER = 400  # bound on each writer's loop


@pytest.fixture
def server(kubectl_bin: str) -> Iterator[ServerProcess]:
    srv = ServerProcess(extra_args=["--disable", "coredns,traefik,servicelb"])
    try:
        srv.start()
        yield srv
    finally:
        srv.cleanup()


@pytest.mark.timing_sensitive
def test_acknowledged_creates_survive_kill_9(server):
    from kubernetes import client, config

    server.kubectl("create", "namespace", "pk-crash")
    acked: list[str] = []
    lock = threading.Lock()
    stop = threading.Event()
    errors: list[BaseException] = []

    def writer(idx: int) -> None:
        api = client.CoreV1Api(config.new_client_from_config(config_file=str(server.kubeconfig)))
        api.api_client.configuration.retries = 0
        for i in range(MAX_PER_WRITER):
            if stop.is_set():
                return
            name = f"w{idx}-{i:04}"
            body = {"metadata": {"name": name}, "data": {"i": str(i)}}
            try:
                api.create_namespaced_config_map("pk-crash", body, _request_timeout=10)
            except BaseException as err:  # the connection dies with the server
                errors.append(err)
                return
            with lock:
                acked.append(name)

    threads = [threading.Thread(target=writer, args=(i,), daemon=True) for i in range(WRITERS)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 60
    while len(acked) < KILL_AFTER and time.monotonic() < deadline:
        time.sleep(0.005)
    server.kill9()
    stop.set()
    for t in threads:
        t.join(15)
    assert len(acked) >= KILL_AFTER, f"only {len(acked)} creates acknowledged before the deadline"
    assert errors, "the kill interrupted no writer (all writers had finished)"
    snapshot = set(acked)

    server.stop()
    server.start()
    listed = server.kubectl("get", "cm", "-n", "pk-crash", "-o", "json").json()
    present = {item["metadata"]["name"] for item in listed["items"]}  # type: ignore[index]
    lost = sorted(snapshot - present)
    assert not lost, f"{len(lost)} acknowledged creates lost after kill -9: {lost[:10]}"
    # the server is writable again
    server.kubectl("create", "configmap", "after-restart", "-n", "pk-crash")
