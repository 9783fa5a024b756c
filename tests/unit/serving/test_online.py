"""The pure parts of `loopline api`: the canary's sticky split, batch collection and grouping,
a request's rows typed and checked against the nightly contract, and a batch's features as
Arrow encoded exactly as through a pandas frame."""

from __future__ import annotations

import asyncio
import math
import time

import numpy as np
import pytest

from tasks.core.config import Params
from tasks.data.row_rules import online_rules
from tasks.model.featurize import ArrowEncoder, Featurizer
from tasks.model.nets import NetConfig, TabularNet
from tasks.serving.champion import Champion
from tasks.serving.online.batcher import Batcher, Job, collect, group_by_model
from tasks.serving.online.canary import id_position, to_challenger
from tasks.serving.online.holder import retry_delay
from tasks.serving.online.rows import (
    Features,
    RequestError,
    parse_rows,
    records_of,
    to_batch,
    to_frame,
)


def test_canary_split_is_sticky_and_close_to_its_share():
    rows = [{"id": f"row-{i}"} for i in range(4000)]
    first = to_challenger(rows, ["id"], 0.25)
    assert to_challenger(rows[::-1], ["id"], 0.25) == first[::-1]  # by id, not by position
    assert 0.22 < sum(first) / len(first) < 0.28
    assert not any(to_challenger(rows, ["id"], 0.0))
    assert all(to_challenger(rows, ["id"], 1.0))
    # A larger share keeps every id the smaller one sent to the challenger.
    half = to_challenger(rows, ["id"], 0.5)
    assert all(h for h, f in zip(half, first, strict=True) if f)
    assert id_position("row-7") == id_position("row-7") != id_position("row-8")


def _job(model: object, rows: int) -> Job:
    return Job(model, [{"x": i} for i in range(rows)], None)  # type: ignore[arg-type]


def test_collect_stops_at_max_rows_or_max_wait():
    async def scenario() -> dict[str, list[int]]:
        queue: asyncio.Queue = asyncio.Queue()
        sizes = lambda jobs: [len(j.rows) for j in jobs]  # noqa: E731
        for rows in (3, 4, 5, 6):
            queue.put_nowait(_job("a", rows))
        seen = {"full": sizes(await collect(queue, max_rows=8, max_wait_s=10.0))}
        seen["lone"] = sizes(await collect(queue, max_rows=100, max_wait_s=10.0))
        queue.put_nowait(_job("a", 50))
        seen["large"] = sizes(await collect(queue, max_rows=8, max_wait_s=10.0))
        for rows in (1, 2):
            queue.put_nowait(_job("a", rows))
        asyncio.get_running_loop().call_later(0.05, queue.put_nowait, _job("a", 3))
        seen["waited"] = sizes(await collect(queue, max_rows=100, max_wait_s=0.5))
        queue.put_nowait(_job("a", 1))
        queue.put_nowait(_job("a", 1))
        seen["timed out"] = sizes(await collect(queue, max_rows=100, max_wait_s=0.05))
        return seen

    started = time.monotonic()
    seen = asyncio.run(scenario())
    assert seen["full"] == [3, 4, 5]  # 12 rows: the job that crossed 8 is taken whole, then stop
    assert seen["lone"] == [6]  # nothing behind it: scored at once, not after 10 s
    assert seen["large"] == [50]  # a job larger than a batch is a batch alone
    assert seen["waited"] == [1, 2, 3]  # concurrency: the batch waited for the third
    assert seen["timed out"] == [1, 1]
    assert time.monotonic() - started < 4.0  # the lone job did not wait its 10 s


def test_jobs_are_grouped_by_the_model_they_were_bound_to():
    old, new = object(), object()
    jobs = [_job(old, 1), _job(new, 2), _job(old, 3)]
    groups = group_by_model(jobs)
    assert [[len(j.rows) for j in g] for g in groups] == [[1, 3], [2]]


@pytest.fixture(scope="module")
def params(base_params_dict) -> Params:
    return Params.model_validate(base_params_dict)


@pytest.fixture(scope="module")
def features(params) -> Features:
    """A model trained on params' own feature list."""
    return Features.of(params.dataset.features)


def _record(**changes) -> dict:
    row = {
        "flight_id": "2013-01-29_US1117_EWR",
        "sched_dep_local": "2013-01-29T05:00:00",
        "carrier": "US",
        "origin": "EWR",
        "dest": "CLT",
        "plane_type": "Fixed wing multi engine",
        "plane_engine": "Turbo-jet",
        "plane_manufacturer": "AIRBUS INDUSTRIE",
        "sched_dep_time": 500,
        "sched_arr_time": 648,
        "hour": 5,
        "weekday": 1,
        "distance": 529,
        "temp": 37.94,
        "dewp": 35.96,
        "humid": 92.49,
        "wind_dir": 0,
        "wind_speed": 0,
        "precip": 0,
        "pressure": 1018.4,
        "visib": 7,
        "plane_year": None,
        "plane_seats": 199,
        "plane_engines": 2,
    }
    return {**row, **changes}


def test_each_row_is_kept_or_refused_with_its_reason(params, features):
    records = [
        _record(),
        _record(flight_id="b", origin="XXX"),
        _record(flight_id="c", distance="far"),
        {k: v for k, v in _record(flight_id="d").items() if k != "dest"},
        _record(flight_id="e", sched_dep_local="soon"),
        _record(flight_id="f", carrier=None),
        _record(flight_id="g", temp=float("inf")),
    ]
    rows = parse_rows(params, online_rules(params), records, features)
    assert list(rows.kept) == [0] and rows.size == 7
    frame = to_frame(params, list(rows.kept.values()), features)
    assert frame["plane_year"].isna().all() and frame["distance"].dtype == "float64"
    assert frame["sched_dep_local"].dtype.kind == "M"
    assert rows.refused == {
        1: "breaks the contract: origin not in ['EWR', 'JFK', 'LGA']",
        2: "distance: expected a number or null, got 'far'",
        3: "missing column(s) dest",
        4: "sched_dep_local: expected an ISO 8601 date-time, got 'soon'",
        5: "breaks the contract: carrier is null",
        6: "breaks the contract: temp outside [-40, 130]",
    }


def test_duplicated_ids_in_one_request_break_the_contract(params, features):
    rows = parse_rows(params, online_rules(params), [_record(), _record()], features)
    assert not rows.kept
    assert set(rows.refused.values()) == {"breaks the contract: flight_id is duplicated"}


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ([], 422, "non-empty list"),
        ("text", 422, "JSON object"),
        ([{}] * 3, 413, "max_request_rows 2"),
    ],
)
def test_unreadable_requests_are_refused_whole(body, status, message):
    with pytest.raises(RequestError, match=message) as raised:
        records_of(body, 2, "flight")
    assert raised.value.status == status


def test_rows_hold_the_loaded_models_columns_not_params():
    """Two models' own lists: the union is required and typed (a column numeric in either is a
    number), a params feature no model reads is neither asked for nor checked by its rule."""
    old = Features(numeric=("distance", "visib"), categorical=("origin", "weekday"))
    new = Features(numeric=("distance", "weekday"), categorical=("carrier",))
    both = Features.of(old, new)
    assert both == Features(("distance", "visib", "weekday"), ("origin", "carrier"))
    assert Features.of(old) == old


def test_rows_are_asked_for_the_loaded_models_columns(params):
    """params dropped visib since the loaded model was trained, and the model never read dest:
    a row must hold visib (and gets a number), need not hold dest, and dest's rule (never null)
    is not applied to rows no model reads it from."""
    listed = params.dataset.features
    dropped = listed.model_copy(update={"numeric": [c for c in listed.numeric if c != "visib"]})
    changed = params.model_copy(
        update={"dataset": params.dataset.model_copy(update={"features": dropped})}
    )
    model = Features.of(
        listed.model_copy(update={"categorical": [c for c in listed.categorical if c != "dest"]})
    )
    without = lambda row, column: {k: v for k, v in row.items() if k != column}  # noqa: E731
    records = [
        without(_record(flight_id="a"), "dest"),
        without(_record(flight_id="b"), "visib"),
        _record(flight_id="c", dest=None, visib="far"),
        _record(flight_id="d", dest=None, origin="XXX"),
    ]
    rows = parse_rows(changed, online_rules(changed), records, model)
    assert list(rows.kept) == [0]
    assert rows.refused == {
        1: "missing column(s) visib",
        2: "visib: expected a number or null, got 'far'",
        3: "breaks the contract: origin not in ['EWR', 'JFK', 'LGA']",
    }
    frame = to_frame(changed, list(rows.kept.values()), model)
    assert frame["visib"].dtype == "float64" and "dest" not in frame


def test_a_batch_as_arrow_encodes_exactly_as_through_a_frame(params):
    records = [
        _record(),
        _record(flight_id="b", dest="XYZ", distance=1000.5),  # an unseen category: OOV
        _record(flight_id="c", temp=None, plane_year=1999),
        _record(flight_id="d", carrier="AA", origin="JFK", hour=17),
    ]
    listed = Features.of(params.dataset.features)
    rows = list(parse_rows(params, online_rules(params), records, listed).kept.values())
    assert len(rows) == 4
    rows[2]["plane_type"] = None  # a null category (set past the contract: encoding is tested)
    features = params.dataset.features
    featurizer = Featurizer.fit(
        to_frame(params, [rows[0], rows[3]], listed), features.categorical, features.numeric, 1
    )
    encode = ArrowEncoder(featurizer)
    for batch in (rows, rows[1:3], rows[:1]):  # one encoder, batches bringing new dictionaries
        expected = featurizer.transform(to_frame(params, batch, listed))
        got = encode(to_batch(featurizer, batch))
        np.testing.assert_array_equal(got.categorical, expected.categorical)
        np.testing.assert_array_equal(got.numeric, expected.numeric)
    assert encode(to_batch(featurizer, rows)).categorical[1].min() == 0  # XYZ: the OOV bucket


def test_a_batch_as_arrow_writes_category_codes_as_text():
    featurizer = Featurizer(
        categorical=["shift"],
        numeric=["x"],
        vocabularies={"shift": ["1", "2"]},
        medians={"x": 0.0},
        means={"x": 0.0},
        stds={"x": 1.0},
        missing_indicators=["x"],
    )
    rows = [
        {"shift": 1, "x": 1.0},
        {"shift": 2.0, "x": math.nan},
        {"shift": "1", "x": 2.0},
        {"shift": None, "x": 3.0},
        {"shift": math.nan, "x": 4.0},
    ]
    batch = to_batch(featurizer, rows)
    assert batch.column("shift").to_pylist() == ["1", "2", "1", None, None]
    assert str(batch.column("x").type) == "double"
    encoded = ArrowEncoder(featurizer)(batch)
    assert encoded.categorical[:, 0].tolist() == [1, 2, 1, 0, 0]  # 0: the OOV bucket
    assert encoded.numeric[:, 1].tolist() == [0, 1, 0, 0, 0]  # x missing in the second row


def test_the_batcher_sets_torch_threads_for_a_forward_pass():
    import torch

    before = torch.get_num_threads()
    try:
        for threads in (1, 2):
            batcher = Batcher(1, 0.0, 1, torch_threads=threads)
            assert batcher.executor.submit(torch.get_num_threads).result() == threads
            batcher.close()
    finally:
        torch.set_num_threads(before)


def test_a_lone_small_job_is_scored_inline_and_others_on_the_scoring_thread(params):
    """api.inline_rows spares a lone small request the two thread hand-offs; same scores."""
    listed = Features.of(params.dataset.features)
    records = [_record(flight_id=f"f{i}", dest=("CLT", "ORD", "BOS")[i % 3]) for i in range(12)]
    rows = list(parse_rows(params, online_rules(params), records, listed).kept.values())
    features = params.dataset.features
    featurizer = Featurizer.fit(
        to_frame(params, rows, listed), features.categorical, features.numeric, 1
    )
    net = TabularNet(NetConfig.for_featurizer(featurizer, [8], 4, 0.0)).eval()
    model = Champion("m", "1", net, featurizer, 0.5, "run")

    async def scored(batcher: Batcher, batch: list[dict]) -> np.ndarray:
        worker = asyncio.create_task(batcher.run())
        try:
            return await batcher.submit(model, batch)
        finally:
            worker.cancel()

    got, threads = {}, {}
    for inline, size in ((8, 1), (8, 12), (0, 1)):
        batcher = Batcher(64, 0.0, 4, inline_rows=inline)
        got[inline, size] = asyncio.run(scored(batcher, rows[:size]))
        threads[inline, size] = len(batcher.executor._threads)  # started for a hand-off
        batcher.close()
    assert threads == {(8, 1): 0, (8, 12): 1, (0, 1): 1}
    np.testing.assert_array_equal(got[8, 1], got[0, 1])
    np.testing.assert_allclose(got[8, 1], got[8, 12][:1], rtol=1e-6)


def test_a_failed_load_is_retried_after_a_doubling_wait_up_to_its_most():
    assert [retry_delay(n, 5.0, 60.0) for n in range(1, 7)] == [5, 10, 20, 40, 60, 60]
    assert retry_delay(1, 2.0, 2.0) == retry_delay(9, 2.0, 2.0) == 2.0
