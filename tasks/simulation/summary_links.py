"""The summary page's links: every tick's drift report (relative, so the page and the reports
open from disk together), and the MLflow version and run pages and the Prefect flow runs when
those servers' addresses are known (`tasks.registry.links`); never a link to nothing."""

from __future__ import annotations

import html
import os
from pathlib import Path
from typing import Any

from tasks.core.config import Params
from tasks.registry.links import mlflow_run_url, mlflow_version_url, prefect_run_url


def link(url: str | None, text: str) -> str:
    """An anchor, or the text alone where there is no page to go to."""
    if not url:
        return html.escape(text)
    return f'<a href="{html.escape(url, quote=True)}">{html.escape(text)}</a>'


def report_href(summary_dir: Path, report: str | None) -> str | None:
    """A drift report's address relative to the summary page; None when it is not on disk."""
    if not report or not Path(report).exists():
        return None
    return Path(os.path.relpath(Path(report).resolve(), Path(summary_dir).resolve())).as_posix()


def ticks_section(params: Params, ticks: list[dict[str, Any]]) -> str:
    """One row per tick: its champion, drift report and Prefect run, and for a retrain the
    training's flow run, its MLflow parent run and the version it registered."""
    name, summary_dir = params.registry.model_name, params.replay.summary_dir
    rows = []
    for tick in ticks:
        version = tick["model_version"]
        cells = [
            html.escape(f"{tick['start']}..{tick['date']}"),
            link(mlflow_version_url(name, version), f"v{version}"),
            link(report_href(summary_dir, tick.get("report")), "drift report"),
            link(prefect_run_url(tick.get("flow_run_id")), "scoring flow run"),
            " · ".join(_retrain_links(params, tick)) or "—",
        ]
        rows.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    header = ("days", "champion", "drift check", "Prefect", "retrain (Prefect, MLflow)")
    head = "".join(f"<th>{h}</th>" for h in header)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def _retrain_links(params: Params, tick: dict[str, Any]) -> list[str]:
    name, parts = params.registry.model_name, []
    if tick.get("retrain_flow_run_id"):
        parts.append(link(prefect_run_url(tick["retrain_flow_run_id"]), "training flow run"))
    if tick.get("retrain_run_id"):
        url = mlflow_run_url(params.tracking, tick["retrain_run_id"])
        parts.append(link(url, "MLflow training run"))
    version = (tick.get("promotion") or {}).get("version")
    if version:
        parts.append(link(mlflow_version_url(name, version), f"{name} v{version}"))
    return parts


def static_note(replay: dict[str, Any]) -> str:
    """Said in words when the loop served the static model throughout: its line then lies
    exactly under the static one."""
    served = {str(t["model_version"]) for t in replay["ticks"]}
    if served != {str(replay["static_version"])}:
        return ""
    retrains = sum(1 for t in replay["ticks"] if t["retrain"])
    why = (
        f"{retrains} retrain(s) ran and none was promoted"
        if retrains
        else "no retrain was triggered"
    )
    return (
        f"<p class='note'><b>The loop is the static model here:</b> {why}, so "
        f"v{html.escape(str(replay['static_version']))} served every day and the loop's line "
        "lies under the static one.</p>"
    )
