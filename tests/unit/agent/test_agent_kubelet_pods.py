"""The kubelet's pod bookkeeping: a request for ``namespace/name`` reaches the worker of the pod now
carrying that name (not a deleted one's), and a deleted pod's directory goes once its worker is gone."""

from __future__ import annotations

from pathlib import Path

from pyk3s.agent.kubelet.kubelet import Kubelet
from pyk3s.agent.kubelet.volumes import VolumeSources
from pyk3s.agent.kubelet.worker import KubeletContext, PodWorker


class PodCache:
    """Stands in for the Pod informer's cache (``get("ns/name")``)."""

    def __init__(self) -> None:
        self.items: dict[str, dict] = {}

    def get(self, key: str) -> dict | None:
        return self.items.get(key)


async def _none(*_args: object) -> None:
    return None


def _ctx(pods_dir: Path) -> KubeletContext:
    return KubeletContext(node_name="pk-n1", pods_dir=pods_dir, host_ip="127.0.0.1", bridge=None, ipam=None,
                          cluster_dns=(), cluster_domain="cluster.local", node_resolv="",
                          sources=VolumeSources(_none, _none, _none, ""), services=list, config_map=_none,
                          secret=_none, write_status=_none, delete_pod=_none)


def _pod(name: str, uid: str) -> dict:
    return {"metadata": {"namespace": "default", "name": name, "uid": uid},
            "spec": {"nodeName": "pk-n1", "hostNetwork": True, "containers": [{"name": "c", "image": "x"}]}}


async def test_worker_for_follows_the_current_pod_of_that_name(tmp_path: Path):
    cache = PodCache()
    kubelet = Kubelet(_ctx(tmp_path), None, cache)
    old, new = _pod("web", "uid-old"), _pod("web", "uid-new")
    kubelet.workers = {"uid-old": PodWorker(kubelet.ctx, old), "uid-new": PodWorker(kubelet.ctx, new)}
    assert kubelet.worker_for("default", "web") is None  # not in the cache (yet or any more)
    cache.items["default/web"] = new
    assert kubelet.worker_for("default", "web").uid == "uid-new"  # type: ignore[union-attr]
    assert kubelet.worker_for("other", "web") is None


async def test_deleted_pod_loses_worker_and_directory(tmp_path: Path):
    cache = PodCache()
    kubelet = Kubelet(_ctx(tmp_path), None, cache)
    gone, kept = _pod("web", "uid-gone"), _pod("db", "uid-kept")
    for p in (gone, kept):
        (tmp_path / p["metadata"]["uid"] / "c").mkdir(parents=True)
        (tmp_path / p["metadata"]["uid"] / "c" / "0.log").write_text("log\n")
        kubelet.workers[p["metadata"]["uid"]] = PodWorker(kubelet.ctx, p)
    # the informer reports a deletion as (last object, None)
    kubelet._on_pod("DELETED", gone, None)
    event, _old, obj = kubelet._queue.get_nowait()
    await kubelet._handle(event, obj)
    for task in list(kubelet._retiring):
        await task
    assert "uid-gone" not in kubelet.workers and not (tmp_path / "uid-gone").exists()
    assert "uid-kept" in kubelet.workers and (tmp_path / "uid-kept" / "c" / "0.log").exists()


async def test_worker_writes_its_readiness_back_when_another_writer_changed_it(tmp_path: Path):
    """The node-lifecycle controller marks the pods of a node it took for silent not Ready; the worker of a
    pod still running reports its own readiness again instead of leaving the pod out of its Services."""
    written: list[dict] = []

    async def write_status(_pod: dict, status: dict) -> None:
        written.append(status)

    ctx = _ctx(tmp_path)
    ctx.write_status = write_status
    pod = _pod("p", "u1")
    worker = PodWorker(ctx, pod)
    mine = {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}
    worker._last_status = mine
    worker.update({**pod, "status": mine})  # the informer delivers the worker's own write
    assert not worker.changed.is_set()
    worker.update({**pod, "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "False"}]}})
    assert worker.changed.is_set() and worker._last_status is None
