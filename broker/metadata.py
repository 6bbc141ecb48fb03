"""Broker identity and id allocation kept in the data directory, in Kafka's own file formats.

- `meta.properties`: cluster id and node id, as Kafka writes it at the root of each log dir.
- `<topic>-<partition>/partition.metadata`: the topic id, as Kafka writes it in each partition dir.
- `producer-id-block`: the next unallocated producer id; ids are handed out from blocks reserved on
  disk first, so a producer id is never reused after a restart (Kafka's AllocateProducerIds).
"""

from __future__ import annotations

import base64
import logging
import os
import uuid
from pathlib import Path

import trio

from broker.storage_failures import RepeatedFailure
from broker.storage_work import run_storage_work
from log.checkpoint import fsync_directory

logger = logging.getLogger(__name__)

PRODUCER_ID_BLOCK_SIZE = 1000
PARTITION_METADATA = "partition.metadata"


def kafka_uuid_string(value: uuid.UUID) -> str:
    """Kafka prints UUIDs (cluster ids, topic ids) as URL-safe base64 without padding."""
    return base64.urlsafe_b64encode(value.bytes).decode().rstrip("=")


def write_atomically(path: Path, text: str, *, private: bool = False) -> None:
    """Durably replace `path` with `text`: a crash leaves the old content or the new, and a
    failure leaves no temporary file behind. `private`: readable by the broker's user alone
    (credentials and passwords), whatever the umask. Blocks on fsync: from the event loop,
    through run_storage_work."""
    # A short temporary name: the final one may already be near the 255-byte file name limit.
    tmp = path.with_name(f".{uuid.uuid4().hex}.tmp")
    try:
        # Created with its final mode: a private file is never readable by others, not even briefly.
        with open(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600 if private else 0o666), "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_directory(path.parent)


def read_properties(path: Path) -> dict[str, str]:
    """Java properties / Kafka metadata files: `key=value` or `key: value`, one per line."""
    values = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        for sep in ("=", ":"):
            if sep in line:
                key, _, value = line.partition(sep)
                values[key.strip()] = value.strip()
                break
    return values


class MetadataError(Exception):
    """A metadata file in the data directory is unreadable or contradicts the configuration."""


def load_cluster_id(data_dir: Path, node_id: int) -> str:
    """The cluster id from meta.properties, created on first start."""
    path = data_dir / "meta.properties"
    if not path.exists():
        cluster_id = kafka_uuid_string(uuid.uuid4())
        write_atomically(path, f"version=1\ncluster.id={cluster_id}\nnode.id={node_id}\n")
        return cluster_id
    try:
        props = read_properties(path)
        cluster_id, stored_node = props["cluster.id"], int(props["node.id"])
    except (OSError, KeyError, ValueError) as exc:
        raise MetadataError(f"{path}: unreadable ({exc})") from exc
    if stored_node != node_id:
        raise MetadataError(f"{path}: data directory belongs to node {stored_node}, not --node-id {node_id}")
    return cluster_id


def write_topic_id(partition_dir: Path, topic_id: uuid.UUID) -> None:
    write_atomically(partition_dir / PARTITION_METADATA, f"version: 0\ntopic_id: {kafka_uuid_string(topic_id)}\n")


class ProducerIdAllocator:
    """Hands out producer ids that stay unique across restarts."""

    def __init__(self, data_dir: Path) -> None:
        self._path = data_dir / "producer-id-block"
        try:
            self._next = int(self._path.read_text()) if self._path.exists() else 0
        except (OSError, ValueError) as exc:
            raise MetadataError(f"{self._path}: unreadable ({exc})") from exc
        self._block_end = self._next
        self._reserving = trio.Lock()
        # Producers retry within milliseconds: a full disk is reported once per interval.
        self._failures = RepeatedFailure(logger, "cannot reserve producer ids")

    async def allocate(self) -> int:
        """A new producer id; raises OSError when the next block cannot be reserved on disk."""
        async with self._reserving:
            if self._next >= self._block_end:
                # Reserve the next block on disk before using any id of it.
                block_end = self._next + PRODUCER_ID_BLOCK_SIZE
                try:
                    await run_storage_work(write_atomically, self._path, str(block_end))
                except OSError as exc:
                    self._failures.failed(exc)
                    raise
                self._failures.succeeded()
                self._block_end = block_end
            producer_id = self._next
            self._next += 1
            return producer_id
