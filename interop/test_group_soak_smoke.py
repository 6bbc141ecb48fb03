"""The group soak benchmark's harness, small and short: the load runs, the probe member's
heartbeats are all answered without error, and nobody is evicted. No figure is judged here."""

from __future__ import annotations

import re

from interop.bench import group_soak


def test_the_soak_runs_and_every_probe_heartbeat_is_answered():
    report = group_soak.soak(members=3, seconds=5, client="confluent")
    assert "broker stayed up: yes" in report, report
    heartbeats, errors = map(int, re.search(r"probe heartbeats: (\d+), errors: (\d+)", report).groups())
    assert heartbeats > 0 and errors == 0, report
    assert "members evicted for missing heartbeats: 0" in report, report
