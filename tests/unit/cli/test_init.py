"""`loopline init` through the real CLI: a draft that loads, and an existing file left alone."""

from __future__ import annotations

import yaml
from helpers import run_cli, sensor_readings

from tasks.core.config import load_params


def test_init_writes_a_draft_that_loads_and_never_overwrites(
    tmp_path, base_params_dict, monkeypatch
):
    monkeypatch.chdir(tmp_path)  # `auto` sizes resolve from ./reports: the project's, not ours
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(base_params_dict, sort_keys=False))
    sensor_readings().to_csv(tmp_path / "readings.csv", index=False)
    code, out, err = run_cli("init", "--input", "readings.csv", "--name", "plant", cwd=tmp_path)
    assert code == 0, err
    assert out.startswith("params-plant.yaml: drafted from 200 of 200 rows of readings.csv")
    assert "`loopline --params params-plant.yaml ingest`" in out
    params = load_params(tmp_path / "params-plant.yaml")
    assert params.dataset.id_columns == ["reading_id"] and params.train == load_params(
        tmp_path / "params.yaml"
    ).train.model_copy(update={"window": params.train.window})

    before = (tmp_path / "params-plant.yaml").read_text()
    code, _, err = run_cli("init", "--input", "readings.csv", "--name", "plant", cwd=tmp_path)
    assert code == 2 and err.count("\n") == 1 and "params-plant.yaml exists" in err
    assert (tmp_path / "params-plant.yaml").read_text() == before
