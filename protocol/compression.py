"""Record compression codecs, as Kafka frames them, built on cramjam.

A record batch (or a legacy wrapper message) names its codec in the low three bits of its
attributes; the compressed blob is the records section (or the inner message set).

Public API:

- ``Compression``: IntEnum of codec ids (NONE=0, GZIP=1, SNAPPY=2, LZ4=3, ZSTD=4).
- ``compression_of(attributes) -> Compression``: the codec named by batch/message attributes;
  raises ``CorruptRecordError`` for the unused ids 5-7.
- ``compress(codec, data, level=None) -> bytes``: what Kafka's Java client writes: gzip; snappy in
  xerial framing (``\\x82SNAPPY\\x00``, version 1, compatible 1, then chunks of 32 KiB input as
  ``i32 length + raw snappy``), which librdkafka, kafka-python and Java all read; LZ4 frame
  format with independent blocks (Kafka rejects linked blocks); zstd frame. ``level`` is a
  value of Kafka's ``compression.gzip.level`` (-1 = zlib's default, 6), ``compression.lz4.level``
  or ``compression.zstd.level``; None is the codec's default; snappy has none.
- ``decompress(codec, data, max_size=DEFAULT_MAX_DECOMPRESSED_SIZE) -> memoryview``: the
  inverse, also accepting raw (unframed) snappy. Output larger than ``max_size`` raises
  ``CorruptRecordError`` without ever allocating more than about ``max_size`` bytes, so a
  compression bomb costs bounded memory and time. The view may cover a larger buffer (sized
  by a guess) so that no trimming copy is made; ``bytes(view)`` when an owner is wanted.

Every failure (corrupt input, unknown codec, too large) raises ``CorruptRecordError``, a
``ProtocolError``: the broker answers CORRUPT_MESSAGE.
"""

from __future__ import annotations

import struct
from enum import IntEnum

import cramjam

from protocol.errors import CorruptRecordError
from protocol.record_batch import COMPRESSION_CODEC_MASK

# Kafka caps produced batches at ~1 MiB compressed; real data rarely expands more than
# tenfold, so 64 MiB leaves room for legitimate batches while bounding a bomb.
DEFAULT_MAX_DECOMPRESSED_SIZE = 64 * 1024 * 1024


XERIAL_MAGIC = b"\x82SNAPPY\x00"
_XERIAL_HEADER = XERIAL_MAGIC + struct.pack(">ii", 1, 1)
_XERIAL_BLOCK_SIZE = 32 * 1024  # the xerial/Java default block of uncompressed input
_XERIAL_CHUNK_LENGTH = struct.Struct(">i")

# First guess of the decompressed size, as a multiple of the compressed size; the output
# buffer grows by _GROWTH up to max_size when the guess is too small.
_FIRST_GUESS_RATIO = 8
_MIN_FIRST_GUESS = 256 * 1024
_GROWTH = 4
_GZIP_DEFAULT_LEVEL = -1
# What cramjam says when an output buffer is too small (a Rust io::ErrorKind::WriteZero).
_BUFFER_TOO_SMALL = "failed to write whole buffer"


class Compression(IntEnum):
    """Codec ids of the attributes field (bits 0-2)."""

    NONE = 0
    GZIP = 1
    SNAPPY = 2
    LZ4 = 3
    ZSTD = 4


def compression_of(attributes: int) -> Compression:
    """The codec named by record batch or legacy message attributes."""
    codec = attributes & COMPRESSION_CODEC_MASK
    if codec > Compression.ZSTD:
        raise CorruptRecordError(f"unknown compression codec id {codec}")
    return Compression(codec)


def compress(codec: Compression, data: bytes | bytearray | memoryview, level: int | None = None) -> bytes:
    """Compress ``data`` the way Kafka's clients frame ``codec``, at ``level`` (see the module docstring)."""
    if codec == Compression.NONE:
        return bytes(data)
    if codec == Compression.GZIP:
        # Kafka's -1 is java.util.zip.Deflater's default, which is zlib's (6), as is cramjam's.
        return bytes(cramjam.gzip.compress(data, level=None if level == _GZIP_DEFAULT_LEVEL else level))
    if codec == Compression.SNAPPY:
        return _xerial_snappy_compress(memoryview(data))
    if codec == Compression.LZ4:
        compressor = cramjam.lz4.Compressor(level=level, content_checksum=False, block_linked=False)
        compressor.compress(bytes(data))  # the streaming compressor takes only bytes
        return bytes(compressor.finish())
    if codec == Compression.ZSTD:
        return bytes(cramjam.zstd.compress(data, level=level))
    raise ValueError(f"unknown compression codec {codec!r}")


def decompress(
    codec: Compression,
    data: bytes | bytearray | memoryview,
    max_size: int = DEFAULT_MAX_DECOMPRESSED_SIZE,
) -> memoryview:
    """Decompress ``data``; raise CorruptRecordError if corrupt or larger than ``max_size``."""
    if codec == Compression.NONE:
        if len(data) > max_size:
            raise CorruptRecordError(f"records exceed {max_size} bytes")
        return memoryview(data)
    if codec == Compression.SNAPPY:
        return _snappy_decompress(memoryview(data), max_size)
    if codec == Compression.GZIP:
        return _decompress_bounded(cramjam.gzip, data, max_size)
    if codec == Compression.LZ4:
        return _decompress_bounded(cramjam.lz4, data, max_size)
    if codec == Compression.ZSTD:
        return _decompress_bounded(cramjam.zstd, data, max_size)
    raise CorruptRecordError(f"unknown compression codec {codec!r}")


def _decompress_bounded(codec_module, data, max_size: int) -> memoryview:
    """Decompress into a buffer that grows only up to max_size + 1 bytes.

    cramjam's ``decompress_into`` stops with an error when the output buffer is full, so a
    buffer one byte over the limit tells "exactly max_size" from "too large".
    """
    limit = max_size + 1
    size = min(limit, max(_MIN_FIRST_GUESS, len(data) * _FIRST_GUESS_RATIO))
    while True:
        out = bytearray(size)
        try:
            written = codec_module.decompress_into(data, out)
        except cramjam.DecompressionError as exc:
            # Freed now, not when the exception is: before a larger buffer is allocated (a bomb
            # costs one buffer, not two), and whatever keeps the exception.
            del out
            if _BUFFER_TOO_SMALL not in str(exc):
                raise CorruptRecordError(f"cannot decompress records: {exc}") from None
            if size == limit:
                raise CorruptRecordError(f"decompressed records exceed {max_size} bytes") from None
            size = min(limit, size * _GROWTH)
            continue
        if written > max_size:
            raise CorruptRecordError(f"decompressed records exceed {max_size} bytes")
        # A view, not `del out[written:]`: shrinking a large bytearray costs more than the
        # decompression itself.
        return memoryview(out)[:written]


def _xerial_snappy_compress(data: memoryview) -> bytes:
    parts = [_XERIAL_HEADER]
    for start in range(0, len(data), _XERIAL_BLOCK_SIZE):
        chunk = bytes(cramjam.snappy.compress_raw(data[start : start + _XERIAL_BLOCK_SIZE]))
        parts.append(_XERIAL_CHUNK_LENGTH.pack(len(chunk)))
        parts.append(chunk)
    return b"".join(parts)


def _snappy_decompress(data: memoryview, max_size: int) -> memoryview:
    """Raw snappy, or xerial framing (a header, then length-prefixed raw snappy chunks).

    Raw snappy declares its uncompressed length up front, so the limit is checked before
    anything is allocated.
    """
    if data[: len(XERIAL_MAGIC)] != XERIAL_MAGIC:
        return _raw_snappy_decompress(data, max_size)
    if len(data) < len(_XERIAL_HEADER):
        raise CorruptRecordError("truncated xerial snappy header")
    out = bytearray()
    pos = len(_XERIAL_HEADER)
    while pos < len(data):
        if len(data) - pos < _XERIAL_CHUNK_LENGTH.size:
            raise CorruptRecordError("truncated xerial snappy chunk length")
        (length,) = _XERIAL_CHUNK_LENGTH.unpack_from(data, pos)
        pos += _XERIAL_CHUNK_LENGTH.size
        if length < 0 or length > len(data) - pos:
            raise CorruptRecordError(f"xerial snappy chunk of {length} bytes exceeds its frame")
        out += _raw_snappy_decompress(data[pos : pos + length], max_size - len(out))
        pos += length
    return memoryview(out)


def _raw_snappy_decompress(data: memoryview, max_size: int) -> memoryview:
    try:
        size = cramjam.snappy.decompress_raw_len(data)
        if size > max_size:
            raise CorruptRecordError(f"decompressed records exceed the limit ({size} bytes)")
        out = bytearray(size)
        cramjam.snappy.decompress_raw_into(data, out)
    except cramjam.DecompressionError as exc:
        raise CorruptRecordError(f"cannot decompress snappy records: {exc}") from None
    return memoryview(out)
