"""Decoder for Kubernetes protobuf request bodies (spec 9).

client-go's typed clients send built-in kinds as ``application/vnd.kubernetes.protobuf``: the magic
``k8s\\x00`` then a ``runtime.Unknown`` {1: typeMeta {1: apiVersion, 2: kind}, 2: raw, 3:
contentEncoding, 4: contentType} whose ``raw`` is the object in the k8s.io/api ``generated.proto``
encoding. :func:`decode_body` returns the JSON object the JSON path would have received.

Rules that make the output match Go's JSON encoding of the same object:

* Scalars carrying ``omitempty`` in Go are dropped when zero/empty ("", 0, false). Pointer fields
  (``replicas``, ``automountServiceAccountToken``, ...) and fields without ``omitempty`` are marked
  keep (``k``): present on the wire means present in JSON, even when zero.
* Nested structs are emitted whenever they are on the wire (Go never omits a struct), so an empty
  ``resources`` or ``status`` becomes ``{}``, as kubectl's JSON would have it.
* ``Time`` → RFC 3339 (an empty Time is the zero time, i.e. ``null``: dropped); ``Quantity`` → its
  string; ``IntOrString`` → int or string (a zero value is dropped so defaulting applies); ``bytes``
  → base64; maps arrive as repeated {1: key, 2: value} entries.
* Fields without a table entry are skipped. Kinds without a table raise :class:`UnsupportedProtobuf`.

Field numbers are interface facts of the public generated.proto files (k8s.io/api v0.32,
k8s.io/apimachinery meta/v1 and runtime).
"""

from .decode import MAGIC, MalformedProtobuf, UnsupportedProtobuf, decode_body, decode_message
from .messages import KINDS, MESSAGES

__all__ = ["KINDS", "MAGIC", "MESSAGES", "MalformedProtobuf", "UnsupportedProtobuf", "decode_body", "decode_message"]
