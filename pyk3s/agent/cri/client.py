"""An asyncio CRI client (``runtime.v1`` over gRPC on a unix socket) with the calls the kubelet makes."""

from __future__ import annotations

import logging
import os
from typing import Any

# the agent starts many subprocesses; gRPC's fork handlers are not needed (no gRPC call in a child) and
# log a line at every fork made while a call is under way
os.environ.setdefault("GRPC_ENABLE_FORK_SUPPORT", "false")
os.environ.setdefault("GRPC_VERBOSITY", "ERROR")

import grpc  # noqa: E402

from pyk3s.agent.cri import api_pb2 as _pb
from pyk3s.agent.cri import api_pb2_grpc as pb_grpc

pb: Any = _pb  # message classes are made at import from the descriptor: no static attributes

__all__ = ["CriClient", "CriError", "pb"]

log = logging.getLogger("pyk3s.agent.cri")


class CriError(RuntimeError):
    """A failed CRI call: ``code`` is the gRPC status name (``NOT_FOUND``, ``UNAVAILABLE``, …)."""

    def __init__(self, method: str, code: str, details: str) -> None:
        super().__init__(f"{method}: {details or code}")
        self.method, self.code, self.details = method, code, details


def endpoint_url(endpoint: str) -> str:
    """``unix:///run/x.sock`` or a plain path -> the gRPC target."""
    if endpoint.startswith("unix://"):
        return "unix://" + endpoint[len("unix://"):]
    if endpoint.startswith("/"):
        return "unix://" + endpoint
    return endpoint


class CriClient:
    def __init__(self, endpoint: str, timeout: float = 30.0) -> None:
        self.endpoint = endpoint
        self.timeout = timeout
        self.channel = grpc.aio.insecure_channel(endpoint_url(endpoint), options=[
            ("grpc.max_receive_message_length", 16 * 1024 * 1024)])
        self.runtime = pb_grpc.RuntimeServiceStub(self.channel)
        self.images = pb_grpc.ImageServiceStub(self.channel)

    async def close(self) -> None:
        await self.channel.close()

    async def _call(self, stub: Any, method: str, request: Any, timeout: float | None = None) -> Any:
        try:
            return await getattr(stub, method)(request, timeout=timeout or self.timeout)
        except grpc.aio.AioRpcError as exc:
            raise CriError(method, exc.code().name, exc.details() or "") from None

    # -- runtime ----------------------------------------------------------------------------------------------
    async def version(self, timeout: float | None = None) -> Any:
        return await self._call(self.runtime, "Version", pb.VersionRequest(version="v1"), timeout)

    async def status(self) -> Any:
        return await self._call(self.runtime, "Status", pb.StatusRequest())

    async def run_pod_sandbox(self, config: Any, handler: str = "") -> str:
        res = await self._call(self.runtime, "RunPodSandbox",
                               pb.RunPodSandboxRequest(config=config, runtime_handler=handler), timeout=120)
        return str(res.pod_sandbox_id)

    async def stop_pod_sandbox(self, sandbox_id: str) -> None:
        await self._call(self.runtime, "StopPodSandbox", pb.StopPodSandboxRequest(pod_sandbox_id=sandbox_id))

    async def remove_pod_sandbox(self, sandbox_id: str) -> None:
        await self._call(self.runtime, "RemovePodSandbox", pb.RemovePodSandboxRequest(pod_sandbox_id=sandbox_id))

    async def pod_sandbox_status(self, sandbox_id: str, verbose: bool = False) -> Any:
        return await self._call(self.runtime, "PodSandboxStatus",
                                pb.PodSandboxStatusRequest(pod_sandbox_id=sandbox_id, verbose=verbose))

    async def list_pod_sandboxes(self, labels: dict[str, str] | None = None) -> list[Any]:
        res = await self._call(self.runtime, "ListPodSandbox", pb.ListPodSandboxRequest(
            filter=pb.PodSandboxFilter(label_selector=labels or {})))
        return list(res.items)

    async def create_container(self, sandbox_id: str, config: Any, sandbox_config: Any) -> str:
        res = await self._call(self.runtime, "CreateContainer", pb.CreateContainerRequest(
            pod_sandbox_id=sandbox_id, config=config, sandbox_config=sandbox_config), timeout=120)
        return str(res.container_id)

    async def start_container(self, container_id: str) -> None:
        await self._call(self.runtime, "StartContainer", pb.StartContainerRequest(container_id=container_id),
                         timeout=120)

    async def stop_container(self, container_id: str, timeout: int) -> None:
        await self._call(self.runtime, "StopContainer",
                         pb.StopContainerRequest(container_id=container_id, timeout=timeout), timeout=timeout + 30)

    async def remove_container(self, container_id: str) -> None:
        await self._call(self.runtime, "RemoveContainer", pb.RemoveContainerRequest(container_id=container_id))

    async def list_containers(self, sandbox_id: str = "", labels: dict[str, str] | None = None) -> list[Any]:
        res = await self._call(self.runtime, "ListContainers", pb.ListContainersRequest(
            filter=pb.ContainerFilter(pod_sandbox_id=sandbox_id, label_selector=labels or {})))
        return list(res.containers)

    async def container_status(self, container_id: str, verbose: bool = False) -> Any:
        res = await self._call(self.runtime, "ContainerStatus",
                               pb.ContainerStatusRequest(container_id=container_id, verbose=verbose))
        return res

    async def exec_sync(self, container_id: str, cmd: list[str], timeout: float) -> Any:
        return await self._call(self.runtime, "ExecSync", pb.ExecSyncRequest(
            container_id=container_id, cmd=cmd, timeout=max(int(timeout), 1)), timeout=timeout + 5)

    async def exec_url(self, container_id: str, cmd: list[str], *, tty: bool, stdin: bool, stdout: bool,
                       stderr: bool) -> str:
        res = await self._call(self.runtime, "Exec", pb.ExecRequest(
            container_id=container_id, cmd=cmd, tty=tty, stdin=stdin, stdout=stdout, stderr=stderr and not tty))
        return str(res.url)

    async def attach_url(self, container_id: str, *, tty: bool, stdin: bool, stdout: bool, stderr: bool) -> str:
        res = await self._call(self.runtime, "Attach", pb.AttachRequest(
            container_id=container_id, tty=tty, stdin=stdin, stdout=stdout, stderr=stderr and not tty))
        return str(res.url)

    # -- images -------------------------------------------------------------------------------------------
    async def image_status(self, image: str) -> Any | None:
        res = await self._call(self.images, "ImageStatus", pb.ImageStatusRequest(image=pb.ImageSpec(image=image)))
        return res.image if res.HasField("image") else None

    async def pull_image(self, image: str, auth: Any | None = None, sandbox_config: Any | None = None,
                         timeout: float = 600) -> str:
        req = pb.PullImageRequest(image=pb.ImageSpec(image=image))
        if auth is not None:
            req.auth.CopyFrom(auth)
        if sandbox_config is not None:
            req.sandbox_config.CopyFrom(sandbox_config)
        res = await self._call(self.images, "PullImage", req, timeout)
        return str(res.image_ref)

    async def list_images(self) -> list[Any]:
        res = await self._call(self.images, "ListImages", pb.ListImagesRequest())
        return list(res.images)

    async def image_fs_info(self) -> Any:
        return await self._call(self.images, "ImageFsInfo", pb.ImageFsInfoRequest())

    async def remove_image(self, image: str) -> None:
        await self._call(self.images, "RemoveImage", pb.RemoveImageRequest(image=pb.ImageSpec(image=image)))
