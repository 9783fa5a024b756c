"""The gate's own record: was each decision right, once the days after it have been labelled?

For every gate decision that compared a candidate with a champion, the `promote.audit_days`
days after the candidate's training window are scored, once their labels have all arrived, by
both models (each with its own features): the one the gate chose and the one it turned down.
The decision was right when the chosen model's AUC on those days is at least the other's less
`promote.max_auc_drop`, the tolerance the gate itself promotes within (a fresher model may trail
the one it replaces by that much), and wrong otherwise; the AUC difference comes with its paired
bootstrap interval and both models' calibration errors, so a decision made on calibration can
be weighed too. The regret is the AUC a decision gave up, tolerated or not. Each audit is
stored once, beside the decisions in the promotion history.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import sqlite3
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import pandas as pd

from tasks.core import tags as tag
from tasks.core.config import Params
from tasks.core.dates import days_between
from tasks.core.io import read_table
from tasks.core.layout import day_paths
from tasks.core.metrics import classification_metrics, paired_auc_difference
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
# Added later: older histories get them as NULL (judged without a tolerance or interval).
LATER_COLUMNS = ("tolerance", "difference_low", "difference_high", "chosen_ece", "other_ece")
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
    tolerance: float | None = None
    difference_low: float | None = None  # of chosen - other AUC, paired bootstrap
    difference_high: float | None = None
    chosen_ece: float | None = None
    other_ece: float | None = None

    @property
    def right(self) -> bool:
        return self.chosen_auc >= self.other_auc - (self.tolerance or 0.0)

    @property
    def tolerated(self) -> bool:
        """Right only thanks to the tolerance: the chosen model trailed, within it."""
        return self.right and self.chosen_auc < self.other_auc

    @property
    def regret(self) -> float:
        """The AUC the decision gave up (0 when the chosen model did at least as well)."""
        return max(0.0, self.other_auc - self.chosen_auc)

    def sentence(self) -> str:
        margin = abs(self.chosen_auc - self.other_auc)
        better = self.chosen_auc >= self.other_auc
        if self.decision == "promoted":
            how = "better" if better else "worse"
            text = f"v{self.version} promoted and {how} than v{self.other} by {margin:.4f}"
        else:
            how = "worse" if better else "better"
            text = f"kept v{self.chosen}: v{self.version} would have been {how} by {margin:.4f}"
        return text + self._evidence()

    def _evidence(self) -> str:
        parts = []
        if self.difference_low is not None:
            parts.append(
                f"v{self.chosen} - v{self.other} interval "
                f"[{self.difference_low:+.4f}, {self.difference_high:+.4f}]"
            )
        if self.tolerated:
            parts.append(f"within the gate's tolerance {self.tolerance}: right")
        elif self.tolerance is not None and not self.right:
            parts.append(f"beyond the gate's tolerance {self.tolerance}: wrong")
        if self.chosen_ece is not None:
            parts.append(
                f"ECE v{self.chosen} {self.chosen_ece:.4f}, v{self.other} {self.other_ece:.4f}"
            )
        return f" ({'; '.join(parts)})" if parts else ""


def _connect(db_path: Path) -> contextlib.closing[sqlite3.Connection]:
    Path(db_path).parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(db_path, timeout=30)
    conn.executescript(SCHEMA)
    present = {row[1] for row in conn.execute("PRAGMA table_info(audits)")}
    for column in LATER_COLUMNS:
        if column not in present:
            conn.execute(f"ALTER TABLE audits ADD COLUMN {column} REAL")
    return contextlib.closing(conn)


def audits(params: Params) -> list[Audit]:
    """Every stored audit of this model, oldest decision first."""
    if not Path(params.promote.history_db).exists():
        return []
    with _connect(params.promote.history_db) as conn:
        columns = ", ".join(field.name for field in fields(Audit))
        rows = conn.execute(
            f"SELECT {columns} FROM audits WHERE model_name = ? ORDER BY decided_at",
            (params.registry.model_name,),
        ).fetchall()
    return [Audit(*row) for row in rows]


def tally(found: list[Audit], pending: int = 0) -> dict[str, float | int]:
    """How many decisions were right (how many of them within the gate's tolerance) and wrong,
    and the AUC they gave up."""
    wrong = [a for a in found if not a.right]
    return {
        "audited": len(found),
        "right": len(found) - len(wrong),
        "tolerated": sum(a.tolerated for a in found),
        "wrong": len(wrong),
        "regret_total": sum(a.regret for a in found),
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
            values = asdict(audit)
            conn.execute(
                f"INSERT OR REPLACE INTO audits ({', '.join(values)}) "
                f"VALUES ({', '.join('?' * len(values))})",
                tuple(values.values()),
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
    scores, figures = {}, {}
    for version in (chosen, other):
        model, featurizer, _ = load_registered(params.tracking, name, version)
        if any(c not in rows.columns for c in featurizer.columns):
            return None
        scores[version] = predict_proba(model, featurizer, rows[featurizer.columns])
        figures[version] = classification_metrics(
            rows[target], scores[version], 0.5, params.evaluate.calibration_bins
        )
    evidence = params.promote.evidence
    difference = paired_auc_difference(
        rows[target],
        scores[chosen],
        scores[other],
        evidence.resamples,
        evidence.confidence,
        evidence.seed,
    )
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
        figures[chosen]["roc_auc"],
        figures[other]["roc_auc"],
        params.promote.max_auc_drop,
        difference["low"],
        difference["high"],
        figures[chosen]["ece"],
        figures[other]["ece"],
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
