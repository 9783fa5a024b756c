"""The monitoring metrics' x-axis: one step per day, the batch date as timestamp."""

from __future__ import annotations

import datetime as dt

from tasks.monitoring.runs import day_step, day_timestamp


def test_consecutive_days_are_consecutive_steps_across_months_and_years():
    days = [dt.date(2013, 12, 30) + dt.timedelta(days=i) for i in range(4)]
    steps = [day_step(d) for d in days]
    assert steps == list(range(steps[0], steps[0] + 4))
    assert day_step("2013-05-16") == 15841 == day_step(dt.date(2013, 5, 16))


def test_timestamp_is_the_batch_dates_midnight_utc():
    stamp = day_timestamp("2013-05-16")
    assert dt.datetime.fromtimestamp(stamp / 1000, dt.UTC) == dt.datetime(
        2013, 5, 16, tzinfo=dt.UTC
    )
