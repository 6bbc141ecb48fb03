"""A small stateful faust-streaming application, run as a worker by interop/test_stream_framework.py:
a running total per account. Each record of the input topic (key: account, value: an amount in
decimal) is added to the account's entry in a Table, and the new total is published to the output
topic under the same key.

The Table keeps its state in memory only (store="memory://"), so a restarted worker has nothing but
the table's changelog topic to rebuild it from. Faust creates that changelog itself, as it does for
every table: a compacted topic (cleanup.policy=compact). The extra configs make the broker roll and
clean it within a fraction of a second, so that a restart rebuilds the state from a cleaned log.

Configured from the environment, all set by the test (the defaults suit a broker started by hand):
  STREAM_BROKER   bootstrap address, host:port
  STREAM_APP_ID   faust's app id: the consumer group and the prefix of the changelog topic
  STREAM_DATADIR  faust's data directory
  STREAM_INPUT, STREAM_OUTPUT   topic names (the test creates both, with PARTITIONS partitions)
Importing the module connects to nothing: the test imports it for its constants.
"""

from __future__ import annotations

import os

import faust

PARTITIONS = 2
TABLE = "totals"
# The changelog faust creates: compact is faust's own choice; these make the broker's cleaner reach
# it quickly (segments roll after 200 ms, and any dirty byte calls for a pass).
CHANGELOG_CONFIGS = {"segment.ms": "200", "segment.bytes": "16384", "min.cleanable.dirty.ratio": "0.01"}

app = faust.App(
    os.environ.get("STREAM_APP_ID", "comlog-totals"),
    broker=f"kafka://{os.environ.get('STREAM_BROKER', '127.0.0.1:9092')}",
    store="memory://",
    datadir=os.environ.get("STREAM_DATADIR", "comlog-totals-data"),
    topic_partitions=PARTITIONS,
    topic_replication_factor=1,
    # Headless: no web server (and so no port to pick).
    web_enabled=False,
    # A worker killed with SIGKILL sends no LeaveGroup: the coordinator drops it only when its
    # session times out, and the next worker's rebalance waits for that (faust's default is 60 s).
    broker_session_timeout=6,
    broker_heartbeat_interval=1,
    broker_rebalance_timeout=20,
    broker_commit_interval=0.5,
    consumer_auto_offset_reset="earliest",
)

amounts = app.topic(os.environ.get("STREAM_INPUT", "amounts"), key_type=str, value_type=str,
                    key_serializer="raw", value_serializer="raw", partitions=PARTITIONS)
results = app.topic(os.environ.get("STREAM_OUTPUT", "totals"), key_type=str, value_type=str,
                    key_serializer="raw", value_serializer="raw", partitions=PARTITIONS)
totals = app.Table(TABLE, key_type=str, value_type=int, default=int, partitions=PARTITIONS,
                   extra_topic_configs=CHANGELOG_CONFIGS)


@app.agent(amounts)
async def add_up(stream):
    async for event in stream.events():
        account = event.key.decode() if isinstance(event.key, bytes) else event.key
        amount = event.value.decode() if isinstance(event.value, bytes) else event.value
        totals[account] += int(amount)
        await results.send(key=account, value=str(totals[account]))
