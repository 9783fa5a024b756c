"""The gate's own record: was each decision right, once the days after it have been labelled?

For every gate decision that compared a candidate with a champion, the `promote.audit_days`
days after the candidate's training window are scored, once their labels have all arrived, by
both models (each with its own features): the one the gate chose and the one it turned down.
The decision was right when the chosen model's AUC on those days is at least the other's; the
regret of a wrong decision is the AUC it gave up. Each audit is stored once, beside the
decisions in the promotion history.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import sqlite3
from dataclasses import asdict, dataclass
from pathlib import Path

import pandas as pd

from tasks.core import tags as tag
from tasks.core.config import Params
from tasks.core.dates import days_between
from tasks.core.io import read_table
from tasks.core.layout import day_paths
from tasks.core.metrics import classification_metrics
from tasks.data.labels import read_labels
from tasks.registry.aliases import registry_client
from tasks.registry.history import Decision, recent

log = logging.getLogger(__name__)

SCHEMA = """
CREATE TABLE IF NOT EXISTS audits (
    model_name TEXT NOT NULL,
    version TEXT NOT NULL,          -- the candidate the decision was about
    decided_at TEXT NOT NULL,       -- identifies the decision (a version may be judged again)
    decision TEXT NOT NULL,
    chosen TEXT NOT NULL,           -- the version the decision left serving
    other TEXT NOT NULL,            -- the version it turned down (or replaced)
    first_day TEXT NOT NULL,
    last_day TEXT NOT NULL,
    rows INTEGER NOT NULL,
    chosen_auc REAL NOT NULL,
    other_auc REAL NOT NULL,
    PRIMARY KEY (model_name, version, decided_at)
);
"""
JUDGED = ("promoted", "rejected", "insufficient_evidence")


@dataclass(frozen=True)
class Audit:
    model_name: str
    version: str
    decided_at: str
    decision: str
    chosen: str
    other: str
    first_day: str
    last_day: str
    rows: int
    chosen_auc: float
    other_auc: float

    @property
    def right(self) -> bool:
        return self.chosen_auc >= self.other_auc

    @property
    def regret(self) -> float:
        """The AUC a wrong decision gave up (0 for a right one)."""
        return max(0.0, self.other_auc - self.chosen_auc)

    def sentence(self) -> str:
        margin = abs(self.chosen_auc - self.other_auc)
        if self.decision == "promoted":
            how = "better" if self.right else "worse"
            return f"v{self.version} promoted and {how} than v{self.other} by {margin:.4f}"
        if self.right:
            return f"kept v{self.chosen}: v{self.version} would have been worse by {margin:.4f}"
        return f"kept v{self.chosen}: v{self.version} would have been better by {margin:.4f}"


def _connect(db_path: Path) -> contextlib.closing[sqlite3.Connection]:
    Path(db_path).parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(db_path, timeout=30)
    conn.executescript(SCHEMA)
    return contextlib.closing(conn)


def audits(params: Params) -> list[Audit]:
    """Every stored audit of this model, oldest decision first."""
    if not Path(params.promote.history_db).exists():
        return []
    with _connect(params.promote.history_db) as conn:
        rows = conn.execute(
            "SELECT * FROM audits WHERE model_name = ? ORDER BY decided_at",
            (params.registry.model_name,),
        ).fetchall()
    return [Audit(*row) for row in rows]


def tally(found: list[Audit], pending: int = 0) -> dict[str, float | int]:
    """How many decisions were right and wrong, and the AUC regret of the wrong ones."""
    wrong = [a for a in found if not a.right]
    return {
        "audited": len(found),
        "right": len(found) - len(wrong),
        "wrong": len(wrong),
        "regret_total": sum(a.regret for a in wrong),
        "regret_mean": sum(a.regret for a in found) / len(found) if found else 0.0,
        "pending": pending,
    }


def audit_decisions(params: Params) -> dict[str, float | int]:
    """Audit every decision whose days have all been labelled and that is not audited yet;
    the tally of all audits so far."""
    name = params.registry.model_name
    done = {(a.version, a.decided_at) for a in audits(params)}
    todo = [
        d
        for d in recent(params.promote.history_db, name, limit=10_000)
        if d.decision in JUDGED and d.compared_to and (d.version, d.at) not in done
    ]
    pending = 0
    for decision in todo:
        audit = _audit(params, decision)
        if audit is None:
            pending += 1
            continue
        with _connect(params.promote.history_db) as conn, conn:
            conn.execute(
                "INSERT OR REPLACE INTO audits VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                tuple(asdict(audit).values()),
            )
        log.info(
            "gate audit: %s (%d rows, %s..%s)",
            audit.sentence(),
            audit.rows,
            audit.first_day,
            audit.last_day,
        )
    return tally(audits(params), pending)


def _audit(params: Params, decision: Decision) -> Audit | None:
    """The decision's audit, or None while its days are not all labelled."""
    from tasks.model.predict import predict_proba  # torch: only when there is one to audit
    from tasks.registry.versions import load_registered

    client = registry_client(params)
    name = params.registry.model_name
    window = client.get_model_version(name, decision.version).tags.get(tag.WINDOW, "")
    if ".." not in window:
        return None
    start = dt.date.fromisoformat(window.split("..")[1]) + dt.timedelta(days=1)
    days = days_between(start, start + dt.timedelta(days=params.promote.audit_days - 1))
    if read_labels(params, days[-1]) is None:
        return None
    rows = _labelled_rows(params, days)
    target = params.dataset.target.name
    if rows.empty or rows[target].nunique() < 2:
        return None
    promoted = decision.decision == "promoted"
    chosen, other = (
        (decision.version, decision.compared_to)
        if promoted
        else (decision.compared_to, decision.version)
    )
    auc = {}
    for version in (chosen, other):
        model, featurizer, _ = load_registered(params.tracking, name, version)
        if any(c not in rows.columns for c in featurizer.columns):
            return None
        scores = predict_proba(model, featurizer, rows[featurizer.columns])
        auc[version] = classification_metrics(rows[target], scores, 0.5, 10)["roc_auc"]
    return Audit(
        name,
        decision.version,
        decision.at,
        decision.decision,
        chosen,
        other,
        days[0].isoformat(),
        days[-1].isoformat(),
        len(rows),
        auc[chosen],
        auc[other],
    )


def _labelled_rows(params: Params, days: list[dt.date]) -> pd.DataFrame:
    """The days' delivered rows joined to their labels (days without either are skipped)."""
    ids = params.dataset.id_columns
    frames = []
    for day in days:
        paths, labels = day_paths(params, day), read_labels(params, day)
        if labels is None or not paths["incoming"].exists():
            continue
        frames.append(read_table(paths["incoming"]).merge(labels.valid, on=ids, how="inner"))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
