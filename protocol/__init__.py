"""Kafka wire protocol codec: bytes in, Python values out, and back. Sans-IO.

- ``protocol.messages``: every API message, ``REQUESTS[api_key]`` / ``RESPONSES[api_key]``
  with ``decode`` / ``encode`` / ``encode_chunks`` per version (see its docstring);
- ``protocol.headers``: request and response headers, whole request/response frames;
- ``protocol.schema``: the declaration language the messages are written in;
- ``protocol.primitives``: Kafka's primitive types as construct types;
- ``protocol.records``, ``protocol.compression``, ``protocol.legacy``: record batches;
- ``protocol.errors``: ``ProtocolError``, raised for anything malformed, and the error codes.
"""
