"""A self-contained HTML page for a validation result: opens from disk, no network, no JS."""

from __future__ import annotations

import html
from typing import Any

STYLE = """
body{font:14px/1.45 system-ui,sans-serif;margin:2rem;color:#1d2433;max-width:1100px}
h1{font-size:1.4rem;margin:0 0 .25rem} .muted{color:#667}
.verdict{display:inline-block;padding:.2rem .7rem;border-radius:1rem;font-weight:600;color:#fff}
.pass{background:#1f8a4c}.fail{background:#c0392b}
table{border-collapse:collapse;width:100%;margin-top:1rem}
th,td{text-align:left;padding:.35rem .5rem;border-bottom:1px solid #e3e6ee;vertical-align:top}
th{background:#f5f7fb} tr.bad td{background:#fdf0ee} code{font-size:12px}
.cards{display:flex;gap:1rem;margin:1rem 0}
.card{border:1px solid #e3e6ee;border-radius:.5rem;padding:.6rem 1rem;min-width:9rem}
.card b{display:block;font-size:1.3rem}
"""


def render_html(report: dict[str, Any]) -> str:
    esc = html.escape
    verdict = "pass" if report["success"] else "fail"
    cards = [
        ("rows", f"{report['rows']:,}"),
        ("clean", f"{report['clean_rows']:,}"),
        ("quarantined", f"{report['quarantined_rows']:,}"),
        ("bad share", f"{report['bad_fraction']:.2%} / {report['max_bad_fraction']:.0%}"),
        ("time", f"{report['duration_s']:.2f} s"),
    ]
    failures = "".join(f"<li>{esc(f)}</li>" for f in report["failures"])
    rows = []
    for check in report["checks"]:
        ok = check["success"]
        found = (
            f"{check['unexpected_count']:,} rows"
            if check["level"] == "row"
            else esc(str(check["observed"]))
            if check["observed"] is not None
            else ""
        )
        examples = esc(str(check["examples"][:5])) if check["examples"] else ""
        rows.append(
            f"<tr class='{'' if ok else 'bad'}'><td>{'✔' if ok else '✘'}</td>"
            f"<td>{esc(check['level'])}</td><td>{esc(check['column'] or '')}</td>"
            f"<td>{esc(_wording(check))}</td><td><code>{esc(check['expectation'])}</code></td>"
            f"<td>{found}</td><td><code>{examples}</code></td></tr>"
        )
    return f"""<!doctype html><html><head><meta charset="utf-8">
<title>Validation: {esc(report["source"])}</title><style>{STYLE}</style></head><body>
<h1>Data validation <span class="verdict {verdict}">{verdict.upper()}</span></h1>
<div class="muted">{esc(report["source"])} · checked {esc(report["checked_at"])}</div>
<div class="cards">{"".join(f'<div class="card">{k}<b>{v}</b></div>' for k, v in cards)}</div>
{f"<h2>Why the gate failed</h2><ul>{failures}</ul>" if failures else ""}
<table><tr><th></th><th>level</th><th>column</th><th>rule</th><th>expectation</th><th>found</th>
<th>examples</th></tr>{"".join(rows)}</table></body></html>
"""


def _wording(check: dict[str, Any]) -> str:
    """A passing check in the rule's words ("column carrier is present"), a failing one in
    the break's ("column carrier is missing")."""
    return (check.get("rule") or check["reason"]) if check["success"] else check["reason"]
