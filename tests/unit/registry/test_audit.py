"""The gate's record judges each decision by the gate's own standard."""

from __future__ import annotations

import sqlite3

from tasks.registry.audit import Audit, _connect, tally

DAYS = ("2013-07-07", "2013-07-20")


def _promoted(chosen_auc: float, other_auc: float, tolerance: float | None = 0.005) -> Audit:
    return Audit(
        "m",
        "4",
        "t",
        "promoted",
        "4",
        "3",
        *DAYS,
        12_000,
        chosen_auc,
        other_auc,
        tolerance,
        -0.01,
        0.002,
        0.03,
        0.04,
    )


def test_a_promotion_trailing_within_the_tolerance_is_right_and_says_so():
    tolerated = _promoted(0.7435, 0.7482)  # v4 of a flights replay: 0.0047 behind v3
    assert tolerated.right and tolerated.tolerated
    assert tolerated.regret == 0.7482 - 0.7435
    assert "within the gate's tolerance 0.005: right" in tolerated.sentence()
    assert "v4 - v3 interval [-0.0100, +0.0020]" in tolerated.sentence()
    beyond = _promoted(0.7400, 0.7482)
    assert not beyond.right and "beyond the gate's tolerance" in beyond.sentence()
    better = _promoted(0.7500, 0.7482)
    assert better.right and not better.tolerated and better.regret == 0
    strict = _promoted(0.7435, 0.7482, tolerance=None)  # recorded before the tolerance
    assert not strict.right
    record = tally([tolerated, beyond, better])
    assert (record["right"], record["tolerated"], record["wrong"]) == (2, 1, 1)
    assert record["regret_total"] == (0.7482 - 0.7435) + (0.7482 - 0.7400)


def test_an_older_history_gains_the_new_columns(tmp_path):
    db = tmp_path / "promotions.db"
    with sqlite3.connect(db) as conn:  # the first schema, one audit in it
        conn.execute(
            "CREATE TABLE audits (model_name TEXT NOT NULL, version TEXT NOT NULL, decided_at "
            "TEXT NOT NULL, decision TEXT NOT NULL, chosen TEXT NOT NULL, other TEXT NOT NULL, "
            "first_day TEXT NOT NULL, last_day TEXT NOT NULL, rows INTEGER NOT NULL, chosen_auc "
            "REAL NOT NULL, other_auc REAL NOT NULL, PRIMARY KEY (model_name, version, "
            "decided_at))"
        )
        conn.execute("INSERT INTO audits VALUES ('m','2','t','rejected','1','2','a','b',9,0.7,0.6)")
    with _connect(db) as conn:
        columns = [row[1] for row in conn.execute("PRAGMA table_info(audits)")]
        old = conn.execute("SELECT tolerance, chosen_ece FROM audits").fetchone()
    assert columns[-5:] == [
        "tolerance",
        "difference_low",
        "difference_high",
        "chosen_ece",
        "other_ece",
    ]
    assert old == (None, None)
