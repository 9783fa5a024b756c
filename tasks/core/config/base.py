"""Base of every config section: unknown keys are errors, values are immutable."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, PlainValidator


class StrictModel(BaseModel):
    """Base for every config section: unknown keys are errors, values are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)


Fraction = Annotated[float, Field(ge=0.0, le=1.0)]


def _number_or_auto(minimum: int):
    """A validator of a whole number ≥ `minimum` or `auto`, failing with one message (a plain
    union would report one error per member)."""

    def check(value: object) -> int | str:
        if value == "auto":
            return value
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise ValueError(f"a whole number ≥ {minimum}, or auto")
        return value

    return PlainValidator(check)


# A size that depends on the data's volume: a number, or `auto`, resolved from the volume ingest
# measured (tasks/core/config/volume.py).
AutoSize = Annotated[int | Literal["auto"], _number_or_auto(1)]
AutoCount = Annotated[int | Literal["auto"], _number_or_auto(0)]
