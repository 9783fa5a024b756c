"""The money side of the summary page: what the replay cost to train and to serve, one model's
lifetime at the production volume in `cost.production`, and the compression frontier.

Every figure comes from times measured on the run (the replay's ticks, the training ledger,
the frontier measured at distillation); only the prices come from params.
"""

from __future__ import annotations

import datetime as dt
import html
import json
from typing import Any

from tasks.core.config import Params
from tasks.core.cost import lifetime
from tasks.core.layout import CANDIDATE, FRONTIER, metrics_file
from tasks.simulation.page import figure, svg, table

TRAINING_COLOUR, INFERENCE_COLOUR = "#9467bd", "#17becf"


def cumulative_costs(replay: dict) -> list[dict[str, Any]]:
    """Per tick: training paid so far (the starting model, then every retrain, promoted or not)
    and scoring paid so far."""
    training = replay.get("static_training_cost") or 0.0
    inference = 0.0
    rows = []
    for tick in replay["ticks"]:
        training += tick.get("training_cost") or 0.0
        inference += (tick.get("scoring_cost") or {}).get("cost", 0.0)
        rows.append({"date": tick["date"], "training": training, "inference": inference})
    return rows


def cost_plot(points: list[dict], currency: str) -> str:
    fig, ax = figure()
    dates = [dt.date.fromisoformat(p["date"]) for p in points]
    ax.step(
        dates,
        [p["training"] for p in points],
        where="post",
        color=TRAINING_COLOUR,
        label="training (the starting model + every retrain)",
    )
    ax.plot(
        dates,
        [p["inference"] for p in points],
        color=INFERENCE_COLOUR,
        label="inference (validating + scoring every nightly batch)",
    )
    ax.set_ylabel(f"cumulative cost, {currency}")
    ax.legend(loc="upper left", fontsize=8)
    fig.autofmt_xdate()
    return svg(fig)


def frontier_plot(rows: list[dict], currency: str) -> str:
    from tasks.training.plots import draw_frontier  # matplotlib: only when plotting

    fig, ax = figure()
    draw_frontier(ax, rows, currency)
    return svg(fig)


def lifetime_section(params: Params, replay: dict) -> str:
    """Cumulative training vs inference over the replay, and the serving champion's lifetime
    projected at `cost.production`."""
    currency = params.cost.currency
    points = cumulative_costs(replay)
    if not points or not points[-1]["inference"]:
        return "<p>No cost figures in this replay (it predates cost accounting).</p>"
    spent = points[-1]
    champion = replay.get("final_champion") or {}
    scored = sum((t.get("scoring_cost") or {}).get("rows", 0) for t in replay["ticks"])
    replay_per_million = spent["inference"] * 1e6 / scored if scored else None
    production = params.cost.production
    projections = []
    for label, per_million in (
        ("nightly pipeline as replayed (validation + scoring)", replay_per_million),
        ("champion at evaluation (featurize + forward)", champion.get("cost_per_million")),
    ):
        if per_million is None or champion.get("training_cost") is None:
            continue
        life = lifetime(champion["training_cost"], per_million, params.cost)
        projections.append(
            [
                label,
                _sig(per_million),
                _sig(life["training"]),
                _sig(life["inference"]),
                f"{life['inference_share']:.1%}",
            ]
        )
    share_now = spent["inference"] / (spent["inference"] + spent["training"])
    return f"""
<p>Spent over the replay: training {_money(spent["training"], currency)}, inference
{_money(spent["inference"], currency)} ({share_now:.0%} of the total) for {scored:,} predictions.
Prices from <code>cost</code> in {html.escape(str(params.file))}: {
        _money(params.cost.cpu_hour, currency)
    } per
CPU-hour, {_money(params.cost.gpu_hour, currency)} per GPU-hour; the seconds are measured.</p>
{cost_plot(points, currency)}
<p>One model's life at the production volume in params: {production.rows_per_night:,} rows a
night for {production.nights_per_model_life} nights, champion v{
        html.escape(str(champion.get("version")))
    }
(training cost {_money(champion.get("training_cost"), currency)}).</p>
{
        table(
            [
                "cost per 1M predictions from",
                f"{currency} per 1M",
                f"training, {currency}",
                f"inference over the life, {currency}",
                "inference share of lifetime cost",
            ],
            projections,
        )
    }
"""


def frontier_section(params: Params) -> str:
    path = metrics_file(params.evaluate.metrics_dir, FRONTIER)
    if not path.exists():
        return "<p>No frontier yet: run the distill stage.</p>"
    rows = json.loads(path.read_text(encoding="utf-8"))
    currency = params.cost.currency
    body = [
        [
            r["variant"],
            r["roc_auc"],
            _sig(r["cost_per_million"]),
            r.get("latency_ms_p95"),
            r.get("artifact_bytes"),
            "yes" if r.get("on_frontier") else "",
            "✔" if r.get("selected") else "",
        ]
        for r in rows
    ]
    header = [
        "variant",
        "test ROC AUC",
        f"{currency} per 1M",
        "p95 ms per batch",
        "bytes",
        "on the frontier",
        "selected",
    ]
    candidate = metrics_file(params.evaluate.metrics_dir, CANDIDATE)
    selection = json.loads(candidate.read_text()).get("selection") if candidate.exists() else None
    chosen = f"<p>Registered: {html.escape(selection)}.</p>" if selection else ""
    return frontier_plot(rows, currency) + table(header, body) + chosen


def _money(value: float | None, currency: str) -> str:
    return "—" if value is None else f"{_sig(value)} {currency}"


def _sig(value: float | None) -> str | None:
    """Three significant figures: CPU-priced costs of small models run to millionths."""
    if value is None:
        return None
    return f"{value:,.2f}" if abs(value) >= 100 else f"{value:.3g}"
