"""The transaction coordinator's own cost per transaction, in-process: no sockets, no codecs.

Run: python -m interop.bench.coordinator_bench [--transactions 5000] [--rounds 5]

A broker in a temporary directory runs one transactional id through `--transactions`
transactions of one partition, one after another: AddPartitionsToTxn (the transaction begins,
Ongoing is logged), EndTxn (PrepareCommit is logged; answered), then the completion written after
the answer (the markers, CompleteCommit logged). No records are produced, so the markers find
nothing to end: what is timed is the state machine, its state log writes and its deadlines, the
part of a small transaction's commit latency that the coordinator adds to every request.
Reported: the median over the rounds of each step's mean microseconds.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import trio

from broker.config import BrokerConfig
from broker.server import Broker

TOPIC = "bench"
TRANSACTIONAL_ID = "bench"
TIMEOUT_MS = 60_000


async def one_round(transactions: int) -> tuple[float, float, float]:
    """Mean seconds of AddPartitionsToTxn, EndTxn and the completion, over `transactions`."""
    with tempfile.TemporaryDirectory(prefix="coordinator-bench-") as directory:
        async with Broker(BrokerConfig(port=0, data_dir=Path(directory))) as broker, \
                trio.open_nursery() as nursery:
            await nursery.start(broker.serve)
            await broker.topics.create(TOPIC, 1, 1, [], {})
            coordinator = broker.transactions
            producer_id, epoch = await coordinator.init_producer_id(TRANSACTIONAL_ID, TIMEOUT_MS)
            add = end = complete = 0.0
            for _ in range(transactions):
                started = time.perf_counter()
                await coordinator.add_partitions(TRANSACTIONAL_ID, producer_id, epoch, [(TOPIC, 0)])
                added = time.perf_counter()
                await coordinator.end_transaction(TRANSACTIONAL_ID, producer_id, epoch, True)
                ended = time.perf_counter()
                await coordinator.describe(TRANSACTIONAL_ID).completed.wait()
                completed = time.perf_counter()
                add, end, complete = add + added - started, end + ended - added, complete + completed - ended
            broker.stop()
    return add / transactions, end / transactions, complete / transactions


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--transactions", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    rounds = [trio.run(one_round, args.transactions) for _ in range(args.rounds)]
    for index, step in enumerate(("AddPartitionsToTxn", "EndTxn", "completion after EndTxn")):
        print(f"{step}: {statistics.median(r[index] for r in rounds) * 1e6:.1f} us")


if __name__ == "__main__":
    main()
