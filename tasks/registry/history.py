"""The promotion history: a durable, queryable SQLite table, and the lock around alias moves.

Every gate decision, forced promotion and rollback is one row. The same database serialises
promotions across processes: `locked()` holds SQLite's write lock (BEGIN IMMEDIATE) while the
caller reads the current champion, decides, moves the aliases and appends the row, so two
training flows finishing together cannot both act on a stale champion.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import sqlite3
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

SCHEMA = """
CREATE TABLE IF NOT EXISTS decisions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    model_name TEXT NOT NULL,
    version TEXT NOT NULL,
    decision TEXT NOT NULL,          -- promoted | rejected | forced | rolled_back
    reasons TEXT NOT NULL,           -- JSON list of readable strings
    checks TEXT NOT NULL,            -- JSON list of {name, passed, value, threshold, detail}
    compared_to TEXT,                -- champion version at decision time (NULL: none)
    champion_after TEXT,             -- champion version once the decision took effect
    actor TEXT NOT NULL,
    at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS decisions_by_model ON decisions (model_name, id);
"""


@dataclass
class Decision:
    model_name: str
    version: str
    decision: str
    reasons: list[str]
    checks: list[dict[str, Any]] = field(default_factory=list)
    compared_to: str | None = None
    champion_after: str | None = None
    actor: str = "loopline"
    at: str = field(default_factory=lambda: dt.datetime.now(dt.UTC).isoformat(timespec="seconds"))

    @property
    def promoted(self) -> bool:
        return self.decision in {"promoted", "forced", "rolled_back"}

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@contextlib.contextmanager
def locked(db_path: Path, timeout_s: float = 120.0) -> Iterator[sqlite3.Connection]:
    """An exclusive write transaction: committed on success, rolled back on any error."""
    db_path = Path(db_path)
    db_path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(db_path, timeout=timeout_s, isolation_level=None)
    try:
        conn.executescript(SCHEMA)
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
    finally:
        conn.close()


def append(conn: sqlite3.Connection, decision: Decision) -> None:
    conn.execute(
        "INSERT INTO decisions (model_name, version, decision, reasons, checks, compared_to, "
        "champion_after, actor, at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            decision.model_name,
            decision.version,
            decision.decision,
            json.dumps(decision.reasons),
            json.dumps(decision.checks),
            decision.compared_to,
            decision.champion_after,
            decision.actor,
            decision.at,
        ),
    )


def recent(db_path: Path, model_name: str, limit: int = 20) -> list[Decision]:
    """The latest decisions for a model, newest first (empty when nothing was decided yet)."""
    db_path = Path(db_path)
    if not db_path.exists():
        return []
    with contextlib.closing(sqlite3.connect(db_path, timeout=30)) as conn:
        conn.executescript(SCHEMA)
        rows = conn.execute(
            "SELECT model_name, version, decision, reasons, checks, compared_to, champion_after, "
            "actor, at FROM decisions WHERE model_name = ? ORDER BY id DESC LIMIT ?",
            (model_name, limit),
        ).fetchall()
    return [
        Decision(
            name,
            version,
            decision,
            json.loads(reasons),
            json.loads(checks),
            compared,
            after,
            actor,
            at,
        )
        for name, version, decision, reasons, checks, compared, after, actor, at in rows
    ]
