"""How the CLI shows things: tables and closing lines, apart from the commands that run."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tasks.core.tags import ALIASES, CHALLENGER, CHAMPION

if TYPE_CHECKING:
    from tasks.core.config import Params


def num(value: object, spec: str) -> str:
    return format(value, spec) if isinstance(value, int | float) else ""


def money(value: float | None, currency: str) -> str:
    return "—" if value is None else f"{value:.4g} {currency}"


def print_status(report: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    models = Table(title=f"{report['model_name']}: aliases")
    for column in ("alias", "version", "variant", "holdout AUC", "p95 ms", "bytes", "ECE"):
        models.add_column(column)
    for alias in ALIASES:
        entry = report[alias]
        if entry is None:
            models.add_row(alias, "—", "", "", "", "", "")
            continue
        m = entry["metrics"]
        models.add_row(
            alias,
            entry["version"],
            entry["variant"] or "",
            num(m.get("holdout_auc"), ".4f"),
            num(m.get("latency_p95"), ".2f"),
            num(m.get("artifact_size"), ",.0f"),
            num(m.get("calibration"), ".4f"),
        )
    console.print(models)
    for line in [report.get("no_champion"), *gate_record_lines(report.get("gate_record"))]:
        if line:
            console.print(line, highlight=False, markup=False, soft_wrap=True)
    for line in cost_lines(report):
        console.print(line, highlight=False, markup=False, soft_wrap=True)
    history = Table(title="latest decisions")
    for column in ("at", "version", "decision", "vs", "by", "reasons"):
        history.add_column(column, overflow="fold")
    for d in report["history"]:
        history.add_row(
            d["at"],
            d["version"],
            d["decision"],
            d["compared_to"] or "—",
            d["actor"],
            "\n".join(d["reasons"]),
        )
    console.print(history)


def gate_record_lines(record: dict | None) -> list[str]:
    """The gate's record: decisions judged again once the days after them were labelled."""
    if not record or not (record["audited"] or record["pending"]):
        return []
    return [
        f"gate record: {record['audited']} decisions audited, {record['right']} right "
        f"({record['tolerated']} within the gate's AUC tolerance), {record['wrong']} wrong, "
        f"AUC regret {record['regret_total']:.4f}; "
        f"{record['pending']} waiting for labels",
        *(f"  {sentence}" for sentence in record["latest"]),
    ]


def cost_lines(report: dict) -> list[str]:
    """Champion's and challenger's training cost, cost per 1M predictions, latency and lifetime
    at the production volume; "—" where a version predates the figure."""
    cfg = report["cost"]
    cur, volume = cfg["currency"], cfg["production"]
    lines = [
        f"costs in {cur} (prices from {cfg['params_file']}: {cfg['cpu_hour']} per CPU-hour, "
        f"{cfg['gpu_hour']} per GPU-hour; seconds measured on the machine that ran the work)"
    ]
    for alias in (CHAMPION, CHALLENGER):
        entry = report[alias]
        if entry is None:
            continue
        c = entry["cost"]
        life = c["lifetime"]
        lifetime = (
            f"{life['total']:.4g} {cur}, inference {life['inference_share']:.0%} of it"
            if life
            else "—"
        )
        lines.append(
            f"  {alias} v{entry['version']}: training {money(c['training_cost'], cur)} "
            f"({num(c['training_cpu_s'], ',.0f') or '—'} CPU-s); "
            f"{money(c['cost_per_million'], cur)} per 1M predictions; "
            f"latency p95 {num(c['latency_ms_p95'], '.2f') or '—'} ms per batch; "
            f"lifetime ({volume['rows_per_night']:,} rows a night for "
            f"{volume['nights_per_model_life']} nights): {lifetime}"
        )
    return lines


def lineage_text(chain: dict[str, Any]) -> str:
    online = f", {chain['online_rows']} online" if chain["online_rows"] else ""
    others = [v for v in chain["versions"] if v != chain["model_version"]]
    also = f" (also v{', v'.join(others)})" if others else ""
    return (
        f"{chain['predictions']} ({chain['rows']} rows{online}, scored {chain['scored_at']})\n"
        f"  → {chain['model_name']} v{chain['model_version']}{also} ({chain['variant']}, teacher "
        f"v{chain['teacher_version']})\n"
        f"  → MLflow run {chain['run_id']} (parent {chain['parent_run_id']})\n"
        f"  → training window {chain['training_window']}, data {chain['data_fingerprint']}\n"
        f"  → git {chain['git_commit']}, params {chain['params_hash']}"
    )


def print_months(summary: dict, start: str, end: str, rows_word: str) -> None:
    """The replay's per-month table: the data set's rows (`rows_word`: "flights"), loop,
    static and oracle AUC, drift, retrains."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"replay {start} → {end} (static model v{summary['static_version']})")
    columns = (
        "month",
        rows_word,
        "loop AUC",
        "static AUC",
        "oracle AUC",
        "drift share",
        "retrains",
    )
    for column in columns:
        table.add_column(column)
    for m in summary["months"]:
        table.add_row(
            m["month"],
            f"{m['rows']:,}",
            num(m["loop_auc"], ".4f"),
            num(m["static_auc"], ".4f"),
            num(m["oracle_auc"], ".4f"),
            num(m["mean_drift_share"], ".2f"),
            str(m["retrains"]),
        )
    Console().print(table)


def demo_closing(params: Params, result: dict, page: Path, summary_s: float, end: str) -> str:
    """Where everything the demo made is, and how long it took."""
    from tasks.core.config import PARAMS_FILE
    from tasks.core.layout import replay_summary_path

    loopline = ".venv/bin/loopline"
    if params.file != PARAMS_FILE:  # the commands shown must read the same params
        loopline += f" --params {shlex.quote(str(params.file))}"
    seconds = result["seconds"]
    return (
        f"\nreplay {result['start']} → {result['end']}: {seconds['total'] / 60:.1f} min "
        f"(oracle training {seconds['oracle_training']:.0f} s beside the loop, "
        f"waited for {seconds['oracle_wait']:.0f} s); "
        f"summary {summary_s:.1f} s\n"
        f"summary page       {page.resolve().as_uri()}\n"
        f"replay figures     {replay_summary_path(params)}\n"
        f"drift reports      {params.drift.report_dir}/\n"
        f"predictions        {params.score.predictions_dir}/  (quarantine: "
        f"{params.score.quarantine_dir}/)\n"
        f"registry status    {loopline} status\n"
        f"lineage of a day   {loopline} lineage --date {end}\n"
        f"MLflow + Prefect   make ui → http://127.0.0.1:5000 and http://127.0.0.1:4200"
    )
