"""The "your own data" guide followed verbatim on a data set built here: docs/your-data.md's
commands, run as a user runs them (the real `loopline` in a subprocess, in a fresh folder with
the shipped params.yaml), editing only the params file as the guide says. The data: inspection
batches on weekdays only, a whole week missing, 20-30 a day over a year, zones coded as numbers,
a fault rate that follows the seasons. Every step must succeed, and the page and the messages
must speak of this data set's batches, never of flights."""

from __future__ import annotations

import datetime as dt
import re
import shlex
import shutil

import numpy as np
import pandas as pd
import pytest
import yaml
from helpers import run_cli

from tasks.core.dates import days_between

REPO_DOCS = "docs/your-data.md"
SECTION = "## Step by step, from `loopline init`"
MISSING_WEEK = pd.date_range("2023-06-05", "2023-06-11").date.tolist()


def inspections() -> pd.DataFrame:
    """A year of quality checks: weekdays only, one week missing, 20-30 a day; the fault rate
    moves with the season (0.2 in autumn, 0.7 in spring) through a seasonal load."""
    rng = np.random.default_rng(7)
    rows = []
    for day in pd.date_range("2023-01-01", "2023-12-31"):
        if day.weekday() >= 5 or day.date() in MISSING_WEEK:
            continue
        season = np.sin(2 * np.pi * day.dayofyear / 365.0)
        for _ in range(int(rng.integers(20, 31))):
            load = rng.normal(50 + 12 * season, 10)
            zone, line = int(rng.integers(1, 4)), str(rng.choice(["A", "B", "C"]))
            logit = -0.9 + 0.12 * (load - 50) + 1.2 * (zone == 3) + 0.8 * (line == "C")
            at = day + pd.Timedelta(minutes=int(rng.integers(0, 24 * 60)))
            rows.append(
                {
                    "batch_no": f"b{len(rows):06d}",
                    "checked_at": f"{at:%Y-%m-%d %H:%M}",
                    "zone": zone,
                    "line": line,
                    "load": round(load, 2),
                    "humidity": round(rng.uniform(20, 90), 1),
                    "fault": int(rng.random() < 1 / (1 + np.exp(-logit))),
                }
            )
    return pd.DataFrame(rows)


def guide_steps(text: str) -> tuple[list[list[str]], dict]:
    """The guide section's shell blocks (each a list of commands) and its quick-try block."""
    section = text.split(SECTION, 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```(\w+)\n(.*?)```", section, re.DOTALL)
    commands = [
        [line for line in body.splitlines() if line.strip()]
        for kind, body in blocks
        if kind == "sh"
    ]
    quick = [yaml.safe_load(body) for kind, body in blocks if kind == "yaml"]
    assert len(commands) == 2 and len(quick) == 1, "the guide's steps changed: update this test"
    return commands, quick[0]


def run(command: str, cwd, **words: str) -> str:
    """One command of the guide, its placeholders filled; it must succeed, without a traceback."""
    for placeholder, value in words.items():
        command = command.replace(placeholder, value)
    args = shlex.split(command)
    assert args[0] == "loopline", command
    code, out, err = run_cli(*args[1:], cwd=cwd)
    assert code == 0, f"{command}\n{out}\n{err}"
    assert "Traceback" not in out + err, command
    return out + err


def edit_params(path, quick: dict) -> None:
    """What the guide asks of the user: the row noun, the coded zones as categories, and the
    quick-try block (each of its sections' keys replace those of the same name)."""
    params = yaml.safe_load(path.read_text())
    params["dataset"]["row_noun"] = "batch"
    features = params["dataset"]["features"]
    features["numeric"].remove("zone")
    features["categorical"].append("zone")
    params["validate"]["rules"]["zone"] = {"values": [1, 2, 3], "nullable": False}
    for section, keys in quick.items():
        params[section] = {**params[section], **keys}
    path.write_text(yaml.safe_dump(params, sort_keys=False))


@pytest.mark.timeout(900)
def test_the_your_data_guide_runs_verbatim_on_a_small_gappy_coded_data_set(tmp_path):
    from conftest import REPO

    (tmp_path / "data" / "raw").mkdir(parents=True)
    inspections().to_csv(tmp_path / "data" / "raw" / "my.csv", index=False)
    shutil.copy(REPO / "params.yaml", tmp_path / "params.yaml")  # a clone's shipped params
    (init, pipeline), quick = guide_steps((REPO / REPO_DOCS).read_text())

    said = [run(command, tmp_path) for command in init]
    params_path = tmp_path / "params-my-data.yaml"
    drafted = yaml.safe_load(params_path.read_text())
    assert drafted["train"]["test_days"] == "auto"  # the template's auto sizes, as shipped
    assert drafted["dataset"]["features"]["numeric"].count("zone") == 1  # codes look numeric
    edit_params(params_path, quick)

    window_end = dt.date.fromisoformat(drafted["train"]["window"]["end"])
    start = window_end + dt.timedelta(days=1)
    end = dt.date(start.year, start.month + 3, 1) - dt.timedelta(days=1)  # three months on
    said += [run(c, tmp_path, START=str(start), END=str(end)) for c in pipeline]

    ingest, train, replay = said[1:4]
    assert re.search(r"month\s+.\s+batches\s+.\s+loop AUC", replay), replay  # its table
    # The sizes that depend on volume were resolved for ~18 batches a calendar day.
    sizes = re.search(r"auto sizes for my-data:(.*?)train.test_days (\d+)", ingest, re.DOTALL)
    assert sizes and int(sizes.group(2)) > 14, ingest
    assert "promoted to champion" in train, train
    scored = (tmp_path / "data" / "predictions").glob("*.parquet")
    predictions = {p.stem for p in scored if len(pd.read_parquet(p))}
    weekdays = {
        str(d) for d in days_between(start, end) if d.weekday() < 5 and d not in MISSING_WEEK
    }
    assert predictions == weekdays  # every day with data scored, none of the gaps
    page = (tmp_path / "reports" / "summary" / "index.html").read_text()
    assert "my-data" in page and "batches" in page
    for text in [page, *said]:
        assert "flight" not in text.lower()
