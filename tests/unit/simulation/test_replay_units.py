"""The replay's pure parts on tiny inputs: ticks, multi-day summaries, the champion timeline."""

from __future__ import annotations

import datetime as dt

import pytest

from tasks.core.errors import LooplineError
from tasks.serving.nightly import combine_days, combine_shadows
from tasks.simulation.replay import ticks
from tasks.simulation.summary import champion_timeline

D = dt.date


def test_ticks_cover_every_day_once_in_order():
    cut = ticks(D(2013, 4, 1), D(2013, 4, 17), 7)
    assert cut == [
        (D(2013, 4, 1), D(2013, 4, 7)),
        (D(2013, 4, 8), D(2013, 4, 14)),
        (D(2013, 4, 15), D(2013, 4, 17)),
    ]
    assert ticks(D(2013, 4, 1), D(2013, 4, 3), 1) == [
        (D(2013, 4, d), D(2013, 4, d)) for d in (1, 2, 3)
    ]
    with pytest.raises(LooplineError, match="is before --start 2013-04-02; swap them"):
        ticks(D(2013, 4, 2), D(2013, 4, 1), 7)


def _day(date: str, scored: int, rate: float, oov: dict, empty: list[str] | None = None) -> dict:
    return {
        "date": date,
        "rows": scored + 1,
        "scored": scored,
        "quarantined": 1,
        "model_name": "m",
        "model_version": "3",
        "positive_rate_predicted": rate,
        "mean_score": rate,
        "out_of_vocabulary": oov,
        "empty_columns": empty or [],
        "seconds": 0.5,
        "predictions": f"{date}.parquet",
    }


def test_combine_days_sums_counts_and_weights_rates_by_rows():
    one = _day("2013-04-01", 100, 0.1, {"dest": 2})
    assert combine_days([one]) is one
    later = _day("2013-04-02", 300, 0.3, {"dest": 1, "carrier": 4}, ["temp", "dewp"])
    both = combine_days([one, later])
    assert (both["start"], both["date"]) == ("2013-04-01", "2013-04-02")
    assert (both["rows"], both["scored"], both["quarantined"]) == (402, 400, 2)
    assert both["positive_rate_predicted"] == pytest.approx((100 * 0.1 + 300 * 0.3) / 400)
    assert both["out_of_vocabulary"] == {"dest": 3, "carrier": 4}
    assert both["empty_columns"] == ["dewp", "temp"]  # any day's, once
    assert both["seconds"] == pytest.approx(1.0)
    assert len(both["days"]) == 2


def test_combine_shadows_weights_agreement_and_skips_days_without_a_challenger():
    a = {
        "challenger_version": "4",
        "rows": 10,
        "shadow": "a",
        "agreement": 1.0,
        "score_correlation": 0.9,
        "mean_abs_diff": 0.0,
    }
    b = {**a, "rows": 30, "shadow": "b", "agreement": 0.6, "mean_abs_diff": 0.2}
    assert combine_shadows([None]) is None
    assert combine_shadows([None, None]) is None
    assert combine_shadows([a]) is a
    merged = combine_shadows([a, None, b])
    assert merged["rows"] == 40
    assert merged["agreement"] == pytest.approx(0.7)
    assert merged["shadow"] == ["a", "b"]


def _tick(start: str, end: str, version: str, promotion: dict | None = None) -> dict:
    return {
        "start": start,
        "date": end,
        "model_version": version,
        "promotion": promotion,
        "reasons": ["drift"] if promotion else [],
        "retrain": bool(promotion),
    }


def test_champion_timeline_groups_serving_versions_and_keeps_gate_reasons():
    rejected = {"version": "5", "decision": "rejected", "reasons": ["calibration: ECE 0.2"]}
    promoted = {"version": "6", "decision": "promoted", "reasons": ["all checks passed"]}
    timeline = champion_timeline(
        [
            _tick("2013-04-01", "2013-04-07", "3"),
            _tick("2013-04-08", "2013-04-14", "3", rejected),
            _tick("2013-04-15", "2013-04-21", "3", promoted),
            _tick("2013-04-22", "2013-04-28", "6"),
        ]
    )
    assert [(t["from"], t["version"]) for t in timeline] == [
        ("2013-04-01", "3"),
        ("2013-04-22", "6"),
    ]
    assert [e["decision"] for e in timeline[0]["events"]] == ["rejected", "promoted"]
    assert timeline[0]["events"][0]["why"] == "calibration: ECE 0.2"


def test_cumulative_costs_count_every_retrain_and_every_night():
    from tasks.simulation.summary_costs import cumulative_costs

    replay = {
        "static_training_cost": 0.5,
        "ticks": [
            {"date": "2013-04-07", "scoring_cost": {"cost": 0.01}, "training_cost": None},
            {"date": "2013-04-14", "scoring_cost": {"cost": 0.02}, "training_cost": 0.25},
            {"date": "2013-04-21", "scoring_cost": None, "training_cost": 0.125},  # rejected
        ],
    }
    points = cumulative_costs(replay)
    assert [p["date"] for p in points] == ["2013-04-07", "2013-04-14", "2013-04-21"]
    assert [p["training"] for p in points] == pytest.approx([0.5, 0.75, 0.875])
    assert [p["inference"] for p in points] == pytest.approx([0.01, 0.03, 0.03])


def _replay(ticks: list[dict]) -> dict:
    return {
        "start": "2024-03-01",
        "end": "2024-03-14",
        "cadence_days": 7,
        "static_version": "1",
        "static_window": "2024-01-01..2024-02-29",
        "static_training_cost": 0.01,
        "final_champion": {"version": "1", "training_cost": 0.01, "cost_per_million": 0.002},
        "oracle_net": None,
        "complete": True,
        "months": [
            {
                "month": "2024-03",
                "rows": 90,
                "loop_auc": 0.7,
                "static_auc": 0.68,
                "oracle_auc": None,
                "mean_drift_share": 0.2,
                "retrains": 0,
                "versions": ["1"],
            }
        ],
        "ticks": ticks,
    }


def _summary_tick(date: str) -> dict:
    return {
        "start": date,
        "date": date,
        "rows": 45,
        "scored": 45,
        "quarantined": 0,
        "drift_share": 0.2,
        "retrain": False,
        "reasons": [],
        "model_version": "1",
        "promotion": None,
        "training_cost": None,
        "scoring_cost": {"cost": 0.0001, "rows": 45},
    }


def test_the_summary_page_speaks_of_the_data_sets_rows_and_its_params_file(
    tmp_path, base_params_dict, monkeypatch
):
    import yaml

    from tasks.core.config import load_params
    from tasks.simulation.summary import build_summary

    monkeypatch.chdir(tmp_path)
    raw = {**base_params_dict, "dataset": {**base_params_dict["dataset"], "row_noun": "reading"}}
    (tmp_path / "sensors.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    params = load_params("sensors.yaml")
    page = build_summary(
        params, _replay([_summary_tick("2024-03-07"), _summary_tick("2024-03-14")])
    )
    text = page.read_text()
    assert "each day's readings are scored by the champion" in text
    assert "Prices from <code>cost</code> in sensors.yaml" in text
    assert "flights are" not in text and "params.yaml" not in text


def test_an_unfinished_replay_says_where_it_stopped(tmp_path, base_params_dict, monkeypatch):
    from tasks.core.config import Params
    from tasks.core.io import write_json
    from tasks.core.layout import replay_summary_path
    from tasks.simulation.summary import load_replay

    monkeypatch.chdir(tmp_path)
    params = Params.model_validate(base_params_dict)
    write_json(
        replay_summary_path(params), {**_replay([_summary_tick("2024-03-07")]), "complete": False}
    )
    with pytest.raises(LooplineError, match=r"stopped after 2024-03-07 \(1 tick\(s\) kept there\)"):
        load_replay(params)
