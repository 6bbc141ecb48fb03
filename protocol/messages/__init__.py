"""Every API message the broker speaks, declared once per message, looked up by API key.

``REQUESTS[api_key]`` and ``RESPONSES[api_key]`` are :class:`~protocol.schema.MessageCodec`
objects with:

- ``name`` ("ProduceRequest"), ``api_key``, ``kind`` ("request" / "response");
- ``valid_versions`` and ``flexible_versions``: :class:`~protocol.schema.Versions`
  ``(low, high)`` named tuples (``high`` is 32767 for Kafka's open-ended "N+";
  ``flexible_versions`` is None when no version is flexible); ``version in valid_versions``;
- ``is_flexible(version)``;
- ``decode(version, buf, offset=0) -> Container``: the body at ``buf[offset:]``, which must be
  consumed entirely. The result is a construct ``Container`` (a dict with attribute access)
  holding exactly the fields of that version in declaration order, arrays as lists, nested
  structs as Containers; tagged fields absent from the wire hold their default, tagged fields
  this declaration does not know are kept under ``"_unknown_tagged_fields"`` (``{tag: bytes}``;
  present only when there are some). Records fields are zero-copy ``memoryview`` slices of
  ``buf``. Pass the whole frame and the body's offset rather than a slice: a ``bytes`` frame
  is then shared by the read stream, and a large bytearray is read in place;
- ``encode(version, value) -> bytes`` from any mapping: missing fields take the declared
  default, fields absent from the version are ignored, a tagged field is written only when it
  differs from its default;
- ``encode_chunks(version, value) -> list``: like ``encode``, but each records value that is
  not bytes-like (any object with ``__len__``, e.g. a log file slice) is an element of its
  own, after its length prefix, between ``bytes`` elements (write them in order; send the
  opaque ones with ``os.sendfile``);
- ``read(version, reader)`` / ``read_to_end(version, reader)`` / ``write(version, value, io)``:
  the same on a stream from :func:`~protocol.primitives.open_frame` / any writable stream, to
  continue after a header;
- ``fields``: the declaration; ``struct(version)`` / ``compiled(version)``: the constructs.

Anything malformed, an unsupported version, or a value that cannot be encoded raises
:class:`~protocol.errors.ProtocolError` naming the message, version and field.
Field names are the snake_case of Kafka's names (ThrottleTimeMs is ``throttle_time_ms``).

Messages are built with their declarations' constructors: calling a codec gives the message
(``PRODUCE_RESPONSE(responses=[...])``), and its nested structs' constructors are named after
their declared types (``PRODUCE_RESPONSE.PartitionProduceResponse(index=0, error_code=3)``).
Each gives the dict of the fields passed; a field left out is encoded as its declared default,
and encoding a struct holding a name that no version declares raises ProtocolError (a
misspelled field would otherwise go out as its default).

``ApiKey`` is the IntEnum of the API keys, named after the requests (``ApiKey.PRODUCE == 0``,
``ApiKey.OFFSET_FOR_LEADER_EPOCH == 23``).
"""

import re
from enum import IntEnum


from ..schema import MessageCodec
from . import acls, admin, fetch, groups, metadata, produce, sasl, scram, transactions

MESSAGES: tuple[MessageCodec, ...] = (
    produce.MESSAGES + fetch.MESSAGES + metadata.MESSAGES + groups.MESSAGES + admin.MESSAGES + sasl.MESSAGES
    + transactions.MESSAGES + scram.MESSAGES + acls.MESSAGES
)
REQUESTS: dict[int, MessageCodec] = {m.api_key: m for m in MESSAGES if m.kind == "request"}
RESPONSES: dict[int, MessageCodec] = {m.api_key: m for m in MESSAGES if m.kind == "response"}


def _constant(request_name: str) -> str:
    """ "OffsetForLeaderEpochRequest" -> "OFFSET_FOR_LEADER_EPOCH"."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", request_name.removesuffix("Request")).upper()


ApiKey = IntEnum("ApiKey", {_constant(codec.name): key for key, codec in sorted(REQUESTS.items())})
