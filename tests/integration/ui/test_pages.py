"""The pages a user opens from disk, in a real browser: Debian's Chromium, headless, driven by
Selenium. After a short replay on the trained slice, the summary page and a drift report must
draw their plots, every link must lead somewhere, and the console must stay free of errors.

Under CI (.ci/run sets LOOPLINE_REQUIRE_BROWSER=1) a missing Chromium fails the test; on a
workstation without it the test skips, saying what to install."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest
import yaml

from bench import browser
from tasks.core.config import load_params
from tasks.registry.promote import run_promote
from tasks.simulation.replay import replay
from tasks.simulation.summary import build_summary

START, END = dt.date(2013, 1, 18), dt.date(2013, 1, 31)


@pytest.fixture()
def chromium():
    why = browser.missing()
    if why:
        if os.environ.get("CI") or os.environ.get("LOOPLINE_REQUIRE_BROWSER") == "1":
            pytest.fail(f"the browser test needs Chromium under CI: {why}")
        pytest.skip(why)
    with browser.chromium() as driver:
        yield driver


@pytest.fixture()
def replayed(trained_copy, prefect_harness):
    """Two weekly ticks of the loop on the trained slice, and the summary page written."""
    path = trained_copy / "params.yaml"
    raw = yaml.safe_load(path.read_text())
    raw["replay"] = {**raw["replay"], "cadence_days": 7, "oracle": False}
    raw["drift"] = {**raw["drift"], "reference_rows": 1000}
    raw["retrain"] = {**raw["retrain"], "max_drift_share": 1.0, "max_prediction_drift": 1e9}
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    params = load_params("params.yaml")
    assert run_promote(params).decision == "promoted"

    from flows.inference import inference_flow

    def tick(first: dt.date, last: dt.date) -> dict:
        return inference_flow(date=last.isoformat(), start=first.isoformat())

    summary = replay(params, START, END, tick)
    return params, summary, build_summary(params, summary)


def _open(driver, page: Path) -> None:
    driver.get(page.resolve().as_uri())
    driver.execute_script("return document.readyState")  # waits for the load event


def _drawn(driver, selector: str) -> list[dict]:
    """Each element's drawn size (SVG/canvas box, an image's natural size)."""
    return driver.execute_script(
        """return [...document.querySelectorAll(arguments[0])].map(e => {
            const box = e.getBoundingClientRect();
            return {w: e.naturalWidth ?? box.width, h: e.naturalHeight ?? box.height};
        });""",
        selector,
    )


def _links_resolve(driver, page: Path) -> list[str]:
    """Every link's target that does not exist (file links on disk; no http link expected,
    since no server address is given here). Plotly's own logo link in a plot's toolbar is the
    plotting library's, not the page's."""
    broken = []
    hrefs = driver.execute_script(
        "return [...document.links].filter(a => !a.closest('.modebar')).map(a => a.href)"
    )
    for href in hrefs:
        url = urlparse(href)
        if url.scheme == "file":
            if not Path(unquote(url.path)).exists():
                broken.append(href)
        else:
            broken.append(href)  # a page to a server that this run has not named
    return broken


def test_summary_page_and_drift_report_render_with_working_links(replayed, chromium):
    params, summary, page = replayed
    driver = chromium

    _open(driver, page)
    assert browser.console_errors(driver) == []
    figures = _drawn(driver, "svg")
    assert len(figures) >= 3 and all(f["w"] > 300 and f["h"] > 100 for f in figures), figures
    links = driver.execute_script("return [...document.links].map(a => a.href)")
    reports = [link for link in links if link.endswith(".html") and "drift" in link]
    assert len(reports) == len(summary["ticks"]) == 2  # every tick's drift report
    assert _links_resolve(driver, page) == []
    text = driver.find_element("tag name", "body").text
    assert "The loop is the static model here" in text  # no retrain: said, not hidden

    report = params.drift.report_dir / f"{END}.html"
    _open(driver, report)
    driver.implicitly_wait(10)
    driver.find_element("css selector", ".js-plotly-plot, .recharts-surface, svg.main-svg")
    plots = _drawn(driver, "svg")
    assert plots and max(p["w"] for p in plots) > 100, plots
    header = driver.find_element("id", "loopline").text
    assert str(END) in header and f"v{summary['ticks'][-1]['model_version']}" in header
    assert "no retrain" in header and "not taken yet" not in header
    assert "threshold 100%" in header  # loopline's own drift-share threshold, as configured
    assert _links_resolve(driver, report) == []
    assert browser.console_errors(driver) == []
    assert report.stat().st_size < 1_500_000  # the library is shared, not in every report
