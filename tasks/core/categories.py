"""How a category value is written: one text per value, whatever type the file stored it as.

A category coded as numbers (a shift code 1, 2, 3) arrives as int64 in one file, as float64 in
the next (a null turns pandas' integers into floats) and as text once ingested. The vocabularies
and the rules hold text, so every reader writes a value the same way: code 1 read as 1, 1.0 or
"1" is the category "1".
"""

from __future__ import annotations

import pandas as pd


def code_text(value: str | int | float) -> str:
    """One category value as text: whole numbers without a decimal point."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def category_text(values: pd.Series) -> pd.Series:
    """A column of categories as text (nulls stay null); text columns are returned as they are."""
    if pd.api.types.is_object_dtype(values) or pd.api.types.is_string_dtype(values):
        return values
    present = values.dropna()
    if pd.api.types.is_float_dtype(values) and (present == present.round()).all():
        values = values.astype("Int64")
    return values.astype(str).where(values.notna())
