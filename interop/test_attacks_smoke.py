"""The attack benchmark's harness, at tiny sizes: every attack runs against a real broker beside
the well-behaved client, the broker stays up through each, and the table comes out. No figure is
judged here; memory and latency targets are the benchmark's business."""

from __future__ import annotations

from interop.bench import attacks

TINY = attacks.Scale(attack_seconds=1, slowloris_seconds=1, flood_connections=200, half_frames=3,
                     slowloris_connections=20, topic_partitions=200, file_limit_topics=2, bomb_bytes=80 << 20)


def test_every_attack_runs_and_the_broker_stays_up(tmp_path):
    outcomes = attacks.run(TINY, tmp_path)

    assert [outcome.name for outcome in outcomes] == [scenario.name for scenario in attacks.SCENARIOS]
    assert all(outcome.stayed_up for outcome in outcomes), attacks.format_table(outcomes)
    assert all(outcome.latencies and outcome.peak_rss > 0 for outcome in outcomes)
    assert not any(problem in outcome.note for outcome in outcomes
                   for problem in ("attack failed", "scenario failed")), attacks.format_table(outcomes)
    table = attacks.format_table(outcomes)
    assert "gzip bomb produce" in table and "good p99" in table
