"""The committed-offset store: commit throughput, and start-up time after many commits.

Run: python -m interop.bench.offsets_bench [--commits 200000] [--groups 100] [--partitions 10]

Each commit writes one group's offsets for `--partitions` partitions (as a consumer's periodic
auto-commit does) into a store in a temporary directory, removed afterwards. Reported:
- commits per second without fsync (the default) and with fsync (--flush-on-ack), the latter on
  a fraction of the commits since each waits for the disk;
- the offsets log's size in records and the reopen (replay) time after all commits: compaction
  keeps both proportional to the live offsets (groups x partitions), not to the commits made;
- the reopen time of a store holding one commit per live offset, for comparison.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import trio

from broker.groups import OffsetAndMetadata, OffsetStore

FSYNC_COMMITS = 500


async def commit_many(store: OffsetStore, commits: int, groups: int, partitions: int) -> float:
    """Seconds taken by `commits` commits spread round-robin over the groups."""
    start = time.perf_counter()
    for index in range(commits):
        offsets = {("topic", partition): OffsetAndMetadata(index, 0, "", index) for partition in range(partitions)}
        await store.commit(f"group-{index % groups}", offsets)
    return time.perf_counter() - start


def reopen_seconds(directory: Path) -> tuple[float, int]:
    start = time.perf_counter()
    store = OffsetStore(directory)
    elapsed = time.perf_counter() - start
    records = store.log_records
    store.close()
    return elapsed, records


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--commits", type=int, default=200_000)
    parser.add_argument("--groups", type=int, default=100)
    parser.add_argument("--partitions", type=int, default=10)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="offsets-bench-"))
    try:
        many, few, synced = root / "many", root / "few", root / "fsync"

        async def run() -> tuple[float, float]:
            store = OffsetStore(many)
            plain = await commit_many(store, args.commits, args.groups, args.partitions)
            store.close()
            store = OffsetStore(few)
            await commit_many(store, args.groups, args.groups, args.partitions)
            store.close()
            store = OffsetStore(synced, fsync=True)
            durable = await commit_many(store, FSYNC_COMMITS, args.groups, args.partitions)
            store.close()
            return plain, durable

        plain, durable = trio.run(run)
        live = args.groups * args.partitions
        print(f"commits of {args.partitions} partitions, no fsync: {args.commits / plain:,.0f}/s")
        print(f"commits of {args.partitions} partitions, fsync each: {FSYNC_COMMITS / durable:,.0f}/s")
        after_many, records = reopen_seconds(many)
        after_few, _ = reopen_seconds(few)
        print(f"reopen after {args.commits:,} commits ({live:,} live offsets, {records:,} records in the log): "
              f"{after_many * 1000:.1f} ms")
        print(f"reopen of a log holding only the {live:,} live offsets: {after_few * 1000:.1f} ms")
    finally:
        shutil.rmtree(root)


if __name__ == "__main__":
    main()
