"""Retrain policies side by side: the same stretch replayed under each policy, from the same
starting model, with what each buys (mean monthly AUC) and costs (retrains, training
CPU-seconds, money). Run after `dvc repro`, in the project:

    python -m bench.bench_policies --start 2013-04-01 --end 2013-12-31

Each policy is one `loopline demo --policy P` (which restarts the loop from the pipeline's
model), so the policies meet the same batches, labels and seeds; the monthly oracle is the
yardstick every replay scores beside the loop. Writes reports/bench/policies.json.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
from pathlib import Path

from rich.console import Console
from rich.table import Table

from tasks.core.config import CostConfig, load_params
from tasks.core.cost import Usage
from tasks.core.io import write_json
from tasks.core.layout import replay_summary_path
from tasks.core.runtime import setup_logging

POLICIES = ("never", "calendar", "threshold", "cost_aware")
REPORT = Path("reports/bench/policies.json")
log = logging.getLogger("bench.policies")


def policy_row(policy: str, summary: dict, cost: CostConfig) -> dict:
    """What one replay bought and cost, from its summary.json: training (the probes' CPU
    included) and scoring, priced by `cost`."""
    months = [m for m in summary["months"] if m.get("loop_auc") is not None]
    ticks = summary["ticks"]
    retrains = [t for t in ticks if t["retrain"]]
    promoted = [t for t in retrains if (t["promotion"] or {}).get("decision") == "promoted"]
    cpu = summary["training_cpu_s"]
    scoring = sum((t["scoring_cost"] or {}).get("cost", 0.0) for t in ticks)
    training = sum(t["training_cost"] or 0.0 for t in retrains)

    def mean(key: str) -> float | None:
        values = [m[key] for m in months if m.get(key) is not None]
        return sum(values) / len(values) if values else None

    return {
        "policy": policy,
        "loop_auc": mean("loop_auc"),
        "static_auc": mean("static_auc"),
        "oracle_auc": mean("oracle_auc"),
        "worst_month_vs_static": min(
            (m["loop_auc"] - m["static_auc"] for m in months if m.get("static_auc")), default=None
        ),
        "retrains": len(retrains),
        "promoted": len(promoted),
        "training_cpu_s": cpu["loop"] + cpu["loop_probes"],
        "probe_cpu_s": cpu["loop_probes"],
        "oracle_cpu_s": cpu["oracle"],
        "total_cost": training + scoring + Usage(cpu_s=cpu["loop_probes"]).money(cost),
        "currency": cost.currency,
    }


def run(params_path: Path, start: str, end: str, policies: tuple[str, ...]) -> list[dict]:
    params = load_params(params_path)
    rows = []
    for policy in policies:
        log.info("policy %s: replaying %s..%s", policy, start, end)
        command = ["loopline", "--params", str(params_path), "demo", "--start", start]
        command += ["--end", end, "--policy", policy]
        subprocess.run(command, check=True, env=os.environ)
        summary = json.loads(replay_summary_path(params).read_text(encoding="utf-8"))
        rows.append(policy_row(policy, summary, params.cost))
    return rows


def table(rows: list[dict]) -> Table:
    out = Table(title="retrain policies, side by side (same stretch, same starting model)")
    for column in ("policy", "loop AUC", "static", "oracle", "worst month - static"):
        out.add_column(column)
    for column in ("retrains", "promoted", "training CPU-s", "oracle CPU-s", "total cost"):
        out.add_column(column, justify="right")
    for r in rows:
        out.add_row(
            r["policy"],
            *(f"{r[k]:.4f}" if r[k] is not None else "-" for k in ("loop_auc", "static_auc")),
            f"{r['oracle_auc']:.4f}" if r["oracle_auc"] is not None else "-",
            f"{r['worst_month_vs_static']:+.4f}" if r["worst_month_vs_static"] is not None else "-",
            str(r["retrains"]),
            str(r["promoted"]),
            f"{r['training_cpu_s']:.0f}",
            f"{r['oracle_cpu_s']:.0f}" if r["oracle_cpu_s"] is not None else "-",
            f"{r['total_cost']:.4g} {r['currency']}",
        )
    return out


def main() -> int:
    setup_logging()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--start", default="2013-04-01")
    parser.add_argument("--end", default="2013-12-31")
    parser.add_argument("--policies", default=",".join(POLICIES))
    args = parser.parse_args()
    policies = tuple(p.strip() for p in args.policies.split(","))
    rows = run(Path(args.params), args.start, args.end, policies)
    Console(width=200).print(table(rows))
    print(f"written: {write_json(REPORT, {'start': args.start, 'end': args.end, 'rows': rows})}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
