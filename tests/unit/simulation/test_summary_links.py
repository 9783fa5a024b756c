"""The summary page's links and its note: a link only where there is a page to open."""

from __future__ import annotations

from tasks.registry.links import prefect_base, prefect_run_url
from tasks.simulation.summary_links import link, report_href, static_note


def test_prefect_pages_come_from_the_ui_url_else_the_api_url(monkeypatch):
    monkeypatch.delenv("PREFECT_UI_URL", raising=False)
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    assert prefect_base() is None and prefect_run_url("abc") is None
    monkeypatch.setenv("PREFECT_API_URL", "http://127.0.0.1:4255/api")
    assert prefect_run_url("abc") == "http://127.0.0.1:4255/runs/flow-run/abc"
    monkeypatch.setenv("PREFECT_UI_URL", "http://ui.example:8080/")
    assert prefect_base() == "http://ui.example:8080"
    assert prefect_run_url(None) is None


def test_a_link_without_a_page_is_plain_text(tmp_path):
    assert link(None, "v<2>") == "v&lt;2&gt;"
    assert link("https://x/#/a?b=1&c", "run") == '<a href="https://x/#/a?b=1&amp;c">run</a>'
    report = tmp_path / "reports/drift/2013-01-31.html"
    report.parent.mkdir(parents=True)
    assert report_href(tmp_path / "reports/summary", str(report)) is None  # not written yet
    report.write_text("x")
    assert report_href(tmp_path / "reports/summary", str(report)) == "../drift/2013-01-31.html"
    assert report_href(tmp_path / "reports/summary", str(tmp_path / "gone.html")) is None


def test_the_note_says_when_the_loop_served_the_static_model_throughout():
    ticks = [{"model_version": "1", "retrain": True}, {"model_version": "1", "retrain": False}]
    note = static_note({"static_version": "1", "ticks": ticks})
    assert "1 retrain(s) ran and none was promoted" in note and "v1 served every day" in note
    ticks[1]["model_version"] = "2"
    assert static_note({"static_version": "1", "ticks": ticks}) == ""
