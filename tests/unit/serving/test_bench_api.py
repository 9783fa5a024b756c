"""The api benchmark's figures from what its load phases saw: throughput, percentiles, the
ratios and their targets (a/c at every level, a/b at the highest), the versions a swap showed."""

from __future__ import annotations

import pytest

from bench.bench_api import LEVELS, SERVERS, Load, _level_rows


def _load(requests: int, seconds: float, ms: float) -> Load:
    return Load(latencies=[ms / 1000] * requests, wall=seconds)


def test_level_rows_give_each_ratio_and_judge_it_against_its_target():
    a, b, c = SERVERS
    loads = {}
    for level in LEVELS:
        loads[(a, level)] = _load(600, 1.0, 5.0)
        loads[(b, level)] = _load(200, 1.0, 20.0)
        loads[(c, level)] = _load(100 if level > 1 else 200, 1.0, 30.0)
    rows = {r.name: r for r in _level_rows(loads)}
    top = max(LEVELS)
    assert rows[f"a/c throughput @{top}"].value == pytest.approx(6.0)
    assert rows[f"a/c throughput @{top}"].met is True
    assert rows["a/c throughput @1"].value == pytest.approx(3.0)
    assert rows["a/c throughput @1"].met is False
    assert rows[f"a/c p99 @{top}"].value == pytest.approx(5.0 / 30.0)
    assert rows[f"a/c p99 @{top}"].met is True
    assert rows[f"a/b throughput @{top}"].met is True and rows["a/b throughput @1"].met is None
    assert rows["a: single-request floor (p50 @1)"].value == pytest.approx(5.0)
    assert rows[f"{a} @{top} throughput"].note == "600 requests, 0 failed"


def test_a_load_adds_turns_and_keeps_the_versions_it_saw_in_order():
    load = _load(10, 1.0, 2.0)
    load.add(Load(latencies=[0.004] * 10, failures=1, wall=1.0))
    assert load.throughput == pytest.approx(10.0) and load.failures == 1
    assert load.ms(50) == pytest.approx(3.0)
    for version in ("1", "1", "2", "2", "2"):
        load.saw(version)
    assert load.versions == ["1", "2"]
