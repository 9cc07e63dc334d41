"""The Kubernetes client every pyk3s component uses (dict-based, HTTPS or in-process)."""

from .api import Client, ResourceClient, now_rfc3339, object_key
from .errors import (
    AlreadyExists,
    ApiError,
    BadRequest,
    Conflict,
    Forbidden,
    Gone,
    Invalid,
    NotFound,
    TransportError,
    Unauthorized,
)

__all__ = [
    "AlreadyExists",
    "ApiError",
    "BadRequest",
    "Client",
    "Conflict",
    "Forbidden",
    "Gone",
    "Invalid",
    "NotFound",
    "ResourceClient",
    "TransportError",
    "Unauthorized",
    "now_rfc3339",
    "object_key",
]
