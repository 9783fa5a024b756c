"""The data contract: Great Expectations suites built from the dataset description.

Two levels, because they fail differently:
- table level (columns present, dtypes, enough rows): a break means the file is unusable, the
  gate fails and nothing is written;
- row level (nulls, ranges, closed sets, window, unique ids): breaking rows are quarantined with
  a reason and the rest go on, unless too many break.
Each expectation carries `meta.reason`, the text a person reads next to a quarantined row.
The nightly batches use the same builder with `with_target=False`.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from tasks.core.categories import code_text
from tasks.core.config import ColumnRule, DatasetConfig

NUMERIC_TYPES = [
    "float64",
    "float32",
    "float16",
    "Float64",
    "Float32",
    "int64",
    "int32",
    "int16",
    "int8",
    "Int64",
    "Int32",
    "Int16",
    "Int8",
    "uint64",
    "uint32",
    "uint16",
    "uint8",
    "UInt64",
    "UInt32",
    "UInt16",
    "UInt8",
]
TEXT_TYPES = ["str", "object", "string", "StringDtype", "category", "CategoricalDtype"]
DATETIME_TYPES = ["datetime64", "datetime64[ns]", "datetime64[us]", "datetime64[ms]", "Timestamp"]
FINITE = 1.0e300  # bounds that admit every real value but reject ±inf
CONTROL_CHARACTERS = r"[\x00-\x1f\x7f]"  # tabs, newlines, NULs, escapes: never part of a category


@dataclass(frozen=True)
class Contract:
    name: str
    table_level: list[Any]
    row_level: list[Any]

    @property
    def required_columns(self) -> list[str]:
        return [e.column for e in self.table_level if type(e).__name__ == "ExpectColumnToExist"]


def build_contract(
    dataset: DatasetConfig,
    rules: dict[str, ColumnRule],
    *,
    min_rows: int,
    with_target: bool = True,
    name: str = "features",
    empty_nullable_fails: bool = True,
) -> Contract:
    """Expectations for the feature table (with label) or a nightly batch (without)."""
    import great_expectations.expectations as gxe

    def meta(reason: str, rule: str) -> dict:
        """What a break reads as (beside a quarantined row) and what the rule asks (a pass)."""
        return {"reason": reason, "rule": rule}

    features = dataset.features
    typed = {
        dataset.event_time: DATETIME_TYPES,
        **{c: category_types(rules.get(c)) for c in features.categorical},
        **dict.fromkeys(features.numeric, NUMERIC_TYPES),
    }
    if with_target:
        typed[dataset.target.name] = [*NUMERIC_TYPES, "bool"]
    required = list(dict.fromkeys([*dataset.id_columns, *typed]))

    table: list[Any] = [
        gxe.ExpectTableRowCountToBeBetween(
            min_value=min_rows,
            meta=meta(f"needs at least {min_rows} rows", f"at least {min_rows} rows"),
        )
    ]
    table += [
        gxe.ExpectColumnToExist(
            column=c, meta=meta(f"column {c} is missing", f"column {c} is present")
        )
        for c in required
    ]
    table += [
        gxe.ExpectColumnValuesToBeInTypeList(
            column=c,
            type_list=types,
            meta=meta(
                f"column {c} must be one of {types[:3]}…", f"column {c} is one of {types[:3]}…"
            ),
        )
        for c, types in typed.items()
    ]
    # A nullable feature may have gaps, not be empty: an all-null column is a broken upstream
    # join, and imputing every value would score garbage (non-nullable ones quarantine instead).
    table += [
        gxe.ExpectColumnProportionOfNonNullValuesToBeBetween(
            column=c,
            min_value=0,
            strict_min=True,
            meta=meta(
                f"column {c} is entirely null (a nullable feature may have gaps only)",
                f"column {c} holds values (a nullable feature may have gaps only)",
            ),
        )
        for c in features.names
        if empty_nullable_fails and rules.get(c, ColumnRule()).nullable
    ]

    rows: list[Any] = []
    not_null = [*dataset.id_columns, dataset.event_time]
    not_null += [c for c in features.names if c in rules and not rules[c].nullable]
    if with_target:
        not_null.append(dataset.target.name)
    rows += [
        gxe.ExpectColumnValuesToNotBeNull(column=c, meta=meta(f"{c} is null", f"{c} is never null"))
        for c in dict.fromkeys(not_null)
    ]
    ids = dataset.id_columns
    if len(ids) == 1:
        rows.append(
            gxe.ExpectColumnValuesToBeUnique(
                column=ids[0], meta=meta(f"{ids[0]} is duplicated", f"{ids[0]} is unique")
            )
        )
    else:
        rows.append(
            gxe.ExpectCompoundColumnsToBeUnique(
                column_list=ids, meta=meta(f"{ids} duplicated", f"{ids} unique together")
            )
        )
    start, end = dataset.window.start, dataset.window.end
    rows.append(
        gxe.ExpectColumnValuesToBeBetween(
            column=dataset.event_time,
            min_value=dt.datetime.combine(start, dt.time.min),
            max_value=dt.datetime.combine(end, dt.time.max),
            meta=meta(
                f"{dataset.event_time} outside the window {start}..{end}",
                f"{dataset.event_time} inside the window {start}..{end}",
            ),
        )
    )
    for col in features.numeric:
        spec = rules.get(col, ColumnRule())
        low = -FINITE if spec.min is None else spec.min
        high = FINITE if spec.max is None else spec.max
        shown = f"[{_fmt(spec.min)}, {_fmt(spec.max)}]"
        rows.append(
            gxe.ExpectColumnValuesToBeBetween(
                column=col,
                min_value=low,
                max_value=high,
                meta=meta(f"{col} outside {shown}", f"{col} within {shown}")
                if spec.min is not None or spec.max is not None
                else meta(f"{col} is not finite", f"{col} is finite"),
            )
        )
    for col in features.categorical:
        rows.append(
            gxe.ExpectColumnValuesToNotMatchRegex(
                column=col,
                regex=CONTROL_CHARACTERS,
                meta=meta(f"{col} holds control characters", f"{col} holds no control characters"),
            )
        )
        spec = rules.get(col, ColumnRule())
        if spec.values is not None:
            rows.append(
                gxe.ExpectColumnValuesToBeInSet(
                    column=col,
                    value_set=value_set(spec.values),
                    meta=meta(f"{col} not in {spec.values}", f"{col} in {spec.values}"),
                )
            )
    if with_target:
        target = dataset.target.name
        rows.append(
            gxe.ExpectColumnValuesToBeInSet(
                column=target,
                value_set=[0, 1],
                meta=meta(f"{target} not in {{0, 1}}", f"{target} in {{0, 1}}"),
            )
        )
    return Contract(name=name, table_level=table, row_level=rows)


def numeric_codes(rule: ColumnRule | None) -> bool:
    """Whether a categorical's closed set is given as numbers (`values: [1, 2]`)."""
    return bool(rule and rule.values and all(not isinstance(v, str) for v in rule.values))


def category_types(rule: ColumnRule | None) -> list[str]:
    """A categorical's allowed dtypes: text, and numbers too when its codes are numbers."""
    return [*TEXT_TYPES, *NUMERIC_TYPES] if numeric_codes(rule) else TEXT_TYPES


def value_set(values: list[str | int | float]) -> list[str | int | float]:
    """A closed set as a numeric column holds it and as text (ingest writes categories as
    text), so `[1, 2]` matches 1, 1.0 and "1"."""
    return list(dict.fromkeys([*values, *map(code_text, values)]))


def _fmt(value: float | None) -> str:
    if value is None:
        return "…"
    return str(int(value)) if float(value).is_integer() else str(value)
