"""Incremental fetch sessions (KIP-227), as Kafka's FetchSessionCache keeps them.

A consumer's first fetch names every partition it reads and, with session epoch 0, asks for a
session; the answer carries the session's id. Its later fetches (epoch 1, 2, ...) name only the
partitions whose fetch position changed, and forget the ones it stopped reading; the answer holds
only the partitions with something new: records, an error, or a high watermark, last stable offset
or log start offset other than the one last sent.

Kafka re-reads every partition of the session on every fetch to find those. Here each session
keeps the partitions that may have something new (`dirty`), marked when their partition changes
(`changed`, called on appends and log start moves), so that a fetch costs what changed, not the
session's size: a consumer of 1,000 partitions at the log end reads none of them. A partition
stays marked while it has records its consumer has not moved past, or an error.

The cache holds at most max.incremental.fetch.session.cache.slots sessions; a new session takes
the slot of one unused for two minutes, else of a smaller one at least that old (Kafka's
eviction), else gets none, and its consumer goes on with full fetches.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable

# Kafka's session ids and epochs (FetchMetadata).
INVALID_SESSION_ID = 0
INITIAL_EPOCH = 0
FINAL_EPOCH = -1
_MAX_EPOCH = 2**31 - 1
# Kafka's min.incremental.fetch.session.eviction.ms (an internal setting, 2 minutes).
EVICTION_MS = 120_000
# Partitions cached over all sessions: a session that would take the cache over this is not
# created (its consumer goes on with full fetches), so no client can make the broker hold
# unbounded memory for sessions (a cached partition costs some 300 bytes).
MAX_CACHED_PARTITIONS = 250_000
# Kafka's INVALID_HIGH_WATERMARK: a partition added to a session is in its next answer.
_UNSENT = -1


def next_epoch(epoch: int) -> int:
    """The session epoch after `epoch` (Kafka's FetchMetadata.nextEpoch)."""
    if epoch < 0:
        return FINAL_EPOCH
    return 1 if epoch == _MAX_EPOCH else epoch + 1


class CachedPartition:
    """A partition of a session: where its consumer reads (as the fetch request names it) and what
    the last answer told it."""

    __slots__ = ("session", "topic", "name", "partition", "fetch_offset", "partition_max_bytes",
                 "high_watermark", "last_stable_offset", "log_start_offset")

    def __init__(self, session: FetchSession, topic, name: str | None, wanted) -> None:
        self.session = session
        # As requests name it: the topic's name before Fetch v13, its id from v13.
        self.topic = topic
        # Its name (None: an unknown topic id), under which its changes are announced.
        self.name = name
        self.partition = wanted.partition
        self.fetch_offset = wanted.fetch_offset
        self.partition_max_bytes = wanted.partition_max_bytes
        self.high_watermark = self.last_stable_offset = self.log_start_offset = _UNSENT

    @property
    def key(self) -> tuple:
        return self.topic, self.partition

    def update_request(self, wanted) -> None:
        self.fetch_offset = wanted.fetch_offset
        self.partition_max_bytes = wanted.partition_max_bytes

    def must_respond(self, data) -> bool:
        """Whether the answer `data` read for it goes to the consumer (Kafka's
        maybeUpdateResponseData, which also counts the last stable offset here)."""
        return (data["error_code"] != 0 or len(data["records"]) > 0 or data["high_watermark"] != self.high_watermark
                or data["last_stable_offset"] != self.last_stable_offset or data["log_start_offset"] != self.log_start_offset)

    def may_have_more(self, data, read_committed: bool) -> bool:
        """After its answer `data`: whether it may still have something new without a change of
        its partition (an error, or records below the high watermark, or the last stable offset
        for read_committed, that its consumer has not moved past)."""
        readable_end = data["last_stable_offset"] if read_committed else data["high_watermark"]
        return data["error_code"] != 0 or self.fetch_offset < readable_end

    def sent(self, data) -> None:
        """`data` went to the consumer: what it knows now. After an error, everything is sent again."""
        self.high_watermark = _UNSENT if data["error_code"] else data["high_watermark"]
        self.last_stable_offset = data["last_stable_offset"]
        self.log_start_offset = data["log_start_offset"]


class FetchSession:
    def __init__(self, session_id: int, uses_topic_ids: bool, now_ms: int) -> None:
        self.id = session_id
        self.epoch = next_epoch(INITIAL_EPOCH)
        self.uses_topic_ids = uses_topic_ids
        self.created_ms = self.last_used_ms = now_ms
        self.partitions: dict[tuple, CachedPartition] = {}
        # The partitions that may have something new, in the order they became so (a partition
        # that returned records goes to the end, so that a fetch's byte limit does not starve
        # the later ones, as Kafka rotates its session order).
        self.dirty: dict[tuple, CachedPartition] = {}
        # The ACLs' version when it was last read (Authorizer.version): a change of ACLs may
        # change any partition's answer.
        self.acl_version: int | None = None

    def mark_all_dirty(self) -> None:
        self.dirty = dict(self.partitions)


class FetchSessions:
    """The broker's sessions by id, and which session partitions each partition's changes mark."""

    def __init__(self, slots: int, clock: Callable[[], int]) -> None:
        self.slots = slots
        self._clock = clock
        # By last use, least recent first.
        self._sessions: dict[int, FetchSession] = {}
        self._cached_partitions = 0
        # (topic name, partition) -> the session partitions reading it.
        self._readers: dict[tuple[str, int], set[CachedPartition]] = {}

    def __len__(self) -> int:
        return len(self._sessions)

    def get(self, session_id: int) -> FetchSession | None:
        return self._sessions.get(session_id)

    def changed(self, topic: str, partition: int) -> None:
        """The partition's high watermark, last stable offset or log start offset moved, or it
        went away: its sessions read it on their next fetch."""
        for cached in self._readers.get((topic, partition), ()):
            cached.session.dirty[cached.key] = cached

    def all_changed(self) -> None:
        """Anything may have changed (fault injection paused or resumed a fetch)."""
        for session in self._sessions.values():
            session.mark_all_dirty()

    def create(self, uses_topic_ids: bool, partitions: Iterable[tuple[object, str | None, object]],
               size: int) -> FetchSession | None:
        """A new session of the (topic as named, name, request partition) given, `size` of
        them, or None when the cache has no slot for it."""
        now = self._clock()
        if self._cached_partitions + size > MAX_CACHED_PARTITIONS or (
                len(self._sessions) >= self.slots and not self._evict_for(size, now)):
            return None
        session_id = random.randrange(1, 2**31)
        while session_id in self._sessions:
            session_id = random.randrange(1, 2**31)
        session = FetchSession(session_id, uses_topic_ids, now)
        self._sessions[session_id] = session
        self.update(session, partitions, ())
        return session

    def update(self, session: FetchSession, partitions: Iterable[tuple[object, str | None, object]],
               forgotten: Iterable[tuple]) -> bool:
        """Apply an incremental fetch's added, changed and forgotten partitions; marks it used.
        False (the session removed) when that leaves it empty or the cache over its bound."""
        for topic, name, wanted in partitions:
            cached = session.partitions.get((topic, wanted.partition))
            if cached is None:
                cached = CachedPartition(session, topic, name, wanted)
                session.partitions[cached.key] = cached
                self._cached_partitions += 1
                if name is not None:
                    self._readers.setdefault((name, cached.partition), set()).add(cached)
            else:
                cached.update_request(wanted)
            session.dirty[cached.key] = cached
        for key in forgotten:
            cached = session.partitions.pop(key, None)
            if cached is not None:
                session.dirty.pop(key, None)
                self._forget(cached)
        if not session.partitions or self._cached_partitions > MAX_CACHED_PARTITIONS:
            self.remove(session.id)
            return False
        session.last_used_ms = self._clock()
        self._sessions[session.id] = self._sessions.pop(session.id)  # the most recently used now
        return True

    def remove(self, session_id: int) -> None:
        session = self._sessions.pop(session_id, None)
        if session is not None:
            for cached in session.partitions.values():
                self._forget(cached)

    def _forget(self, cached: CachedPartition) -> None:
        self._cached_partitions -= 1
        if cached.name is not None:
            readers = self._readers[cached.name, cached.partition]
            readers.discard(cached)
            if not readers:
                del self._readers[cached.name, cached.partition]

    def _evict_for(self, size: int, now: int) -> bool:
        """Free a slot for a new session of `size` partitions, as Kafka's tryEvict: the least
        recently used session if unused for EVICTION_MS, else the smallest one older than that
        if it is smaller (Kafka's EvictableKey order)."""
        oldest = next(iter(self._sessions.values()))
        if now - oldest.last_used_ms > EVICTION_MS:
            self.remove(oldest.id)
            return True
        evictable = [session for session in self._sessions.values() if now - session.created_ms > EVICTION_MS]
        if not evictable:
            return False
        weakest = min(evictable, key=lambda session: (len(session.partitions), session.id))
        if size <= len(weakest.partitions):
            return False
        self.remove(weakest.id)
        return True
