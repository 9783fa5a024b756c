"""The day's drift report as one HTML page: Evidently's own report, under a loopline header
that says what the loop made of it (date, model version, windows, the thresholds it judged
with, score drift, and the retrain decision with its reasons).

Compact, still offline from disk: Evidently's 3.5 MB JavaScript library and its icon font are
written once into the report folder's `js/` (Evidently's own "folder" layout) and every report
loads them from there; the report's own numbers are kept to 5 significant digits.
"""

from __future__ import annotations

import html
import re
import shutil
import uuid
from pathlib import Path
from typing import Any

from tasks.core.io import atomic_path, write_text
from tasks.core.layout import DRIFT_REPORT_ASSETS

PENDING = "<td id='decision'>not taken yet</td>"
LONG_FLOAT = re.compile(r"-?\d+\.\d{6,}(?:[eE][-+]?\d+)?")
STYLE = """<style>
#loopline{font:14px/1.45 system-ui,sans-serif;margin:1rem 1.5rem;color:#1d2433}
#loopline h1{font-size:1.3rem;margin:0 0 .4rem} #loopline table{border-collapse:collapse}
#loopline th,#loopline td{text-align:left;padding:.2rem .6rem;border-bottom:1px solid #e3e6ee}
#loopline .yes{color:#c0392b;font-weight:600} #loopline .no{color:#1f8a4c;font-weight:600}
</style>"""


def write_report(path: Path, snapshot: Any, summary: dict[str, Any], params: Any) -> None:
    """Evidently's report of `snapshot` under loopline's header, atomically; the decision is
    added by `add_decision` once it is taken."""
    from evidently.legacy.utils.dashboard import STATIC_PATH

    assets = Path(path).parent / DRIFT_REPORT_ASSETS
    lib, font = _asset_names()
    for name, source in ((lib, "index.js"), (font, "material-ui-icons.woff2")):
        if not (assets / name).exists():
            with atomic_path(assets / name) as tmp:
                shutil.copyfile(Path(STATIC_PATH) / source, tmp)
    page = _evidently_page(
        snapshot, f"{DRIFT_REPORT_ASSETS}/{lib}", f"{DRIFT_REPORT_ASSETS}/{font}"
    )
    page = LONG_FLOAT.sub(lambda m: f"{float(m.group()):.5g}", page)
    header = STYLE + _header(summary, params)
    write_text(path, page.replace("<body>", f"<body>{header}", 1))


def add_decision(path: Path, decision: dict[str, Any]) -> None:
    """The retrain decision of the day, into the report's header (atomically)."""
    page = Path(path).read_text(encoding="utf-8")
    verdict = (
        "<span class='yes'>retrain</span>"
        if decision["retrain"]
        else "<span class='no'>no retrain</span>"
    )
    reasons = "; ".join(decision["reasons"]) or "no trigger"
    decided = f"<td id='decision'>{verdict}: {html.escape(reasons)}</td>"
    write_text(path, page.replace(PENDING, decided, 1))


def _asset_names() -> tuple[str, str]:
    import evidently

    return f"evidently.{evidently.__version__}.js", "material-ui-icons.woff2"


def _evidently_page(snapshot: Any, lib: str, font: str) -> str:
    """What `snapshot.save_html` writes, with the library and font as files beside it: the
    same widgets (Evidently 0.7's snapshot keeps them in `_widgets`), the same template."""
    from evidently.legacy.model.dashboard import DashboardInfo
    from evidently.legacy.renderers.html_widgets import group_widget
    from evidently.legacy.utils.dashboard import TemplateParams, file_html_template

    widgets = [group_widget(title="", widgets=snapshot._widgets), *snapshot._tests_widgets]
    graphs = {}
    for widget in widgets:
        for graph in widget.get_additional_graphs():
            info = getattr(graph, "params", graph)
            graphs[str(graph.id)] = info.dict() if hasattr(info, "dict") else info
    return file_html_template(
        TemplateParams(
            dashboard_id="metric_" + uuid.uuid4().hex,
            dashboard_info=DashboardInfo(name="Report", widgets=widgets),
            additional_graphs=graphs,
            embed_font=False,
            embed_lib=False,
            font_file=font,
            include_js_files=[lib],
        )
    )


def _header(summary: dict[str, Any], params: Any) -> str:
    cfg = params.retrain
    prediction = summary.get("prediction_drift") or {}
    score = prediction.get("score")
    rows = [
        ("date", summary["date"]),
        ("model", f"{params.registry.model_name} v{summary['model_version']}"),
        ("current window", f"{summary.get('window', '?')} ({summary['current_rows']:,} rows)"),
        (
            "reference",
            f"{summary.get('reference_window') or 'training window'} "
            f"({summary['reference_rows']:,} rows)",
        ),
        (
            "features drifted",
            f"{summary['drift_share']:.0%} "
            f"(retrain threshold {cfg.max_drift_share:.0%}: Evidently's drift share below)",
        ),
        (
            "score drift",
            "n/a"
            if score is None
            else f"{score:.3f} ({prediction.get('method')}; "
            f"retrain threshold {cfg.max_prediction_drift})",
        ),
        ("live AUC", _live_auc(summary, cfg.max_auc_drop)),
    ]
    cells = "".join(f"<tr><th>{k}</th><td>{html.escape(str(v))}</td></tr>" for k, v in rows)
    decision = f"<tr><th>decision</th>{PENDING}</tr>"
    return (
        f"<div id='loopline'><h1>loopline drift check — {html.escape(params.dataset.name)}, "
        f"{summary['date']}</h1><table>{cells}{decision}</table></div>"
    )


def _live_auc(summary: dict[str, Any], threshold: float) -> str:
    auc, drop = summary.get("live_auc"), summary.get("auc_drop")
    if auc is None:
        return "n/a (no labelled days yet)"
    if drop is None:
        return f"{auc:.4f}"
    return f"{auc:.4f}, {drop:.4f} below the champion's test AUC (retrain threshold {threshold})"
