"""The demo's summary page: one static HTML file, plots inline as SVG, opens from disk offline.

It reads what the run left behind (the replay's summary.json, the models' metrics JSON, the
validation report) and shows the loop against the static model and the oracle, drift with
retrain markers, the champion timeline with gate reasons, the model table and quarantine counts.
"""

from __future__ import annotations

import datetime as dt
import html
import json
from pathlib import Path
from typing import Any

from tasks.core.config import Params, RetrainConfig
from tasks.core.errors import LooplineError
from tasks.core.io import write_text
from tasks.core.layout import (
    FEATURE_TABLE_REPORT,
    latest_training,
    metrics_file,
    replay_summary_path,
    training_record,
    validation_report,
)
from tasks.simulation.page import figure, nan_if_none, svg, table
from tasks.simulation.summary_costs import frontier_section, lifetime_section
from tasks.simulation.summary_links import static_note, ticks_section

SERIES = (  # (key in the monthly table, label, colour): one colour per series in every figure
    ("loop_auc", "loop (retrains when it decides to)", "#1f77b4"),
    ("static_auc", "static (the model the replay started from)", "#7f7f7f"),
    ("oracle_auc", "oracle (retrained monthly on every label)", "#2ca02c"),
)
MODELS = ("teacher", "student", "student_int8", "student_pruned", "student_pruned_int8", "baseline")


def load_replay(params: Params) -> dict:
    """The replay's summary.json; a clear error when no replay has run yet."""

    path = replay_summary_path(params)
    if not path.exists():
        raise LooplineError(f"{path}: missing; run `loopline replay` (or `make demo`) first")
    replay = json.loads(path.read_text(encoding="utf-8"))
    if not replay.get("complete", True):
        done = replay["ticks"][-1]["date"] if replay["ticks"] else replay["start"]
        raise LooplineError(
            f"{path}: the replay {replay['start']}..{replay['end']} stopped after {done} "
            f"({len(replay['ticks'])} tick(s) kept there); rerun `loopline replay` to finish it"
        )
    return replay


def auc_plot(months: list[dict], rows_noun: str) -> str:
    fig, ax = figure()
    labels = [m["month"] for m in months]
    for key, label, colour in SERIES:
        values = [m.get(key) for m in months]
        if any(v is not None for v in values):
            ax.plot(
                range(len(labels)),
                [nan_if_none(v) for v in values],
                "o-",
                label=label,
                color=colour,
            )
    ax.set_xticks(range(len(labels)), labels)  # positions: month strings are no categories
    ax.set_ylabel(f"ROC AUC on the month's {rows_noun}")
    ax.legend(loc="best", fontsize=8)
    return svg(fig)


def drift_plot(ticks: list[dict], cfg: RetrainConfig) -> str:
    """Both drift triggers against their own thresholds (feature drift share, score drift),
    and every retrain, coloured by what the gate made of it."""
    fig, ax = figure()
    dates = [dt.date.fromisoformat(t["date"]) for t in ticks]
    for key, label, colour, threshold in (
        ("drift_share", "share of features drifted", "#d62728", cfg.max_drift_share),
        ("prediction_drift", "score drift", "#9467bd", cfg.max_prediction_drift),
    ):
        values = [nan_if_none(t.get(key)) for t in ticks]
        ax.plot(dates, values, "o-", color=colour, label=f"{label} (Evidently, trailing window)")
        ax.axhline(
            threshold, color=colour, linestyle=":", label=f"its retrain threshold {threshold}"
        )
    for tick, date in zip(ticks, dates, strict=True):
        if tick["retrain"]:
            promoted = (tick.get("promotion") or {}).get("decision") == "promoted"
            ax.axvline(date, color="#2ca02c" if promoted else "#ff7f0e", alpha=0.6)
    ax.plot([], [], color="#2ca02c", label="retrain → promoted")
    ax.plot([], [], color="#ff7f0e", label="retrain → kept as challenger")
    ax.set_ylim(0, max(1.0, *[t.get("prediction_drift") or 0 for t in ticks]))
    ax.set_ylabel("drift")
    ax.legend(loc="upper left", fontsize=8)
    fig.autofmt_xdate()
    return svg(fig)


def champion_timeline(ticks: list[dict]) -> list[dict]:
    """Which version served from when, and every retrain's gate outcome with its reasons."""
    rows: list[dict] = []
    for tick in ticks:
        if not rows or rows[-1]["version"] != tick["model_version"]:
            rows.append({"from": tick["start"], "version": tick["model_version"], "events": []})
        promotion = tick.get("promotion")
        if promotion:
            rows[-1]["events"].append(
                {
                    "date": tick["date"],
                    "candidate": promotion["version"],
                    "decision": promotion["decision"],
                    "why": "; ".join(promotion["reasons"]),
                    "trigger": "; ".join(tick["reasons"]),
                }
            )
    return rows


def _mean(months: list[dict], key: str) -> float | None:
    values = [m[key] for m in months if m.get(key) is not None]
    return sum(values) / len(values) if values else None


def build_summary(params: Params, replay: dict) -> Path:
    """Write `<replay.summary_dir>/index.html` from the replay summary and the run's reports."""
    months, ticks = replay["months"], replay["ticks"]
    seconds = replay.get("seconds", {})
    replay_min, oracle_s = seconds.get("total", 0) / 60, seconds.get("oracle_training", 0)
    oracle_wait_s = seconds.get("oracle_wait", 0)
    latest = latest_training(params)  # the models of the loop's latest retrain, if any
    teacher_record = training_record(latest.train.model_dir)
    window = json.loads(teacher_record.read_text())["window"] if teacher_record.exists() else None
    trained_on = f"{window['start']}..{window['end']}" if window else "n/a"
    body = f"""
<h1>loopline — the closed loop on {html.escape(params.dataset.name)}</h1>
<p>Replay {replay["start"]} → {replay["end"]}, one tick every {replay["cadence_days"]} day(s):
each day's {html.escape(params.dataset.plural_noun)} are scored by the champion; drift and the
retrain decision run once per tick. Static model: v{replay["static_version"]} (trained on
{replay.get("static_window")}). Oracle:
{html.escape(str(replay.get("oracle_net")))} network retrained at each month start on every label
so far. Generated {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC; replay wall time
{replay_min:.1f} min (oracle training {oracle_s:.0f} s in a worker process beside the loop, which
waited {oracle_wait_s:.0f} s for it).</p>
<h2>Does the loop pay? Monthly ROC AUC</h2>
{auc_plot(months, params.dataset.plural_noun)}
{_months_table(months)}
{static_note(replay)}
<h2>Drift over time, with retrains</h2>
{drift_plot(ticks, params.retrain)}
<h2>Champion timeline</h2>
{_timeline_table(ticks)}
{_gate_record(replay.get("gate_record"))}
<h2>Every tick: where to look</h2>
{ticks_section(params, ticks)}
<h2>Models of the latest training ({html.escape(trained_on)})</h2>
{_models_table(latest.evaluate.metrics_dir)}
<h2>What the loop costs: training vs inference</h2>
{lifetime_section(params, replay)}
<h2>Compression frontier of the latest training</h2>
{frontier_section(latest)}
<h2>Quarantine</h2>
{_quarantine_table(validation_report(params.validate_.report_dir, FEATURE_TABLE_REPORT), ticks)}
<p>More: <code>make ui</code> → MLflow http://127.0.0.1:5000 (runs, lineage, registry) and
Prefect http://127.0.0.1:4200 (flow runs, artifacts); drift reports under
<code>{html.escape(str(params.drift.report_dir))}/</code>.</p>
"""
    page = f"""<!doctype html><html lang="en"><head><meta charset="utf-8">
<title>loopline summary</title><style>
body {{ font-family: system-ui, sans-serif; max-width: 70rem; margin: 2rem auto; color: #222; }}
table {{ border-collapse: collapse; margin: 0.5rem 0 1.5rem; font-size: 0.9rem; }}
th, td {{ border: 1px solid #ccc; padding: 0.25rem 0.6rem; text-align: right; }}
td:first-child, th:first-child {{ text-align: left; }}
svg {{ max-width: 100%; height: auto; }}
.note {{ background: #fff8e1; border-left: 4px solid #f0b400; padding: 0.4rem 0.8rem; }}
</style></head><body>{body}</body></html>"""
    target = params.replay.summary_dir / "index.html"
    write_text(target, page)
    return target


def _gate_record(record: dict | None) -> str:
    """Were the gate's decisions right? Each judged again on the days after it, once labelled."""
    if not record or not (record["audited"] or record["pending"]):
        return ""
    return f"""<h2>The gate's record</h2>
<p>{record["audited"]} decision(s) judged again on the labelled days after each:
<b>{record["right"]} right ({record["tolerated"]} of them within the gate's AUC tolerance),
{record["wrong"]} wrong</b>; AUC given up {record["regret_total"]:.4f} in all (mean regret
{record["regret_mean"]:.4f} per decision);
{record["pending"]} waiting for labels. `loopline status` lists each.</p>"""


def _months_table(months: list[dict]) -> str:
    header = [
        "month",
        "labelled rows",
        "loop AUC",
        "static AUC",
        "oracle AUC",
        "mean drift share",
        "retrains",
        "versions serving",
    ]
    rows = [
        [
            m["month"],
            m["rows"],
            m["loop_auc"],
            m["static_auc"],
            m.get("oracle_auc"),
            m["mean_drift_share"],
            m["retrains"],
            m["versions"],
        ]
        for m in months
    ]
    rows.append(
        [
            "mean",
            sum(m["rows"] for m in months),
            _mean(months, "loop_auc"),
            _mean(months, "static_auc"),
            _mean(months, "oracle_auc"),
            None,
            sum(m["retrains"] for m in months),
            None,
        ]
    )
    return table(header, rows)


def _timeline_table(ticks: list[dict]) -> str:
    rows: list[list[Any]] = []
    for entry in champion_timeline(ticks):
        rows.append([entry["from"], f"v{entry['version']} serves", "", "", ""])
        rows.extend(
            [e["date"], f"v{e['candidate']}", e["decision"], e["trigger"], e["why"]]
            for e in entry["events"]
        )
    return table(["date", "version", "gate decision", "why it retrained", "gate reasons"], rows)


def _models_table(metrics_dir: Path) -> str:
    keys = ("roc_auc", "rows_per_s", "model_rows_per_s", "parameters", "artifact_bytes")
    rows = [
        [name, *(metrics.get(k) for k in keys)]
        for name in MODELS
        if (path := metrics_file(metrics_dir, name)).exists()
        for metrics in [json.loads(path.read_text())]
    ]
    header = ["model", "test ROC AUC", "rows/s end to end", "rows/s network", "parameters", "bytes"]
    return table(header, rows)


def _quarantine_table(validation_report: Path, ticks: list[dict]) -> str:
    validation = json.loads(validation_report.read_text()) if validation_report.exists() else {}
    checked, quarantined = validation.get("rows"), validation.get("quarantined_rows")
    nightly_rows = sum(t["rows"] for t in ticks)
    nightly_quarantined = sum(t["quarantined"] for t in ticks)
    return table(
        ["where", "rows checked", "rows quarantined", "share"],
        [
            ["training table (validate stage)", checked, quarantined, _share(quarantined, checked)],
            [
                "nightly batches (replay)",
                nightly_rows,
                nightly_quarantined,
                _share(nightly_quarantined, nightly_rows),
            ],
        ],
    )


def _share(part: int | None, whole: int | None) -> float | None:
    return part / whole if part is not None and whole else None
