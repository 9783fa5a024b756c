"""What the CLI prints names the params file actually used, and the data set's own words."""

from __future__ import annotations

from pathlib import Path

import yaml

from flows.cli.render import cost_lines, demo_closing
from tasks.core.config import load_params

RESULT = {
    "start": "2013-04-01",
    "end": "2013-04-30",
    "seconds": {"total": 60.0, "oracle_training": 1.0, "oracle_wait": 0.0},
}


def _params_file(tmp_path: Path, base: dict, name: str) -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(base, sort_keys=False))
    return path


def test_demo_closing_hints_carry_the_params_file_when_one_was_given(tmp_path, base_params_dict):
    page = tmp_path / "index.html"
    other = load_params(_params_file(tmp_path, base_params_dict, "sensors.yaml"))
    text = demo_closing(other, RESULT, page, 1.0, "2013-04-30")
    assert f".venv/bin/loopline --params {tmp_path / 'sensors.yaml'} status" in text
    assert f"--params {tmp_path / 'sensors.yaml'} lineage --date 2013-04-30" in text


def test_demo_closing_hints_stay_plain_with_the_default_params(
    tmp_path, base_params_dict, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    _params_file(tmp_path, base_params_dict, "params.yaml")
    text = demo_closing(load_params("params.yaml"), RESULT, tmp_path / "i.html", 1.0, "2013-04-30")
    assert "registry status    .venv/bin/loopline status\n" in text and "--params" not in text


def test_status_cost_lines_name_the_params_file(base_params_dict):
    cost = base_params_dict["cost"]
    report = {
        "cost": {**cost, "params_file": "conf/sensors.yaml"},
        "champion": None,
        "challenger": None,
    }
    assert cost_lines(report)[0].startswith(
        f"costs in {cost['currency']} (prices from conf/sensors.yaml: {cost['cpu_hour']} per"
    )
