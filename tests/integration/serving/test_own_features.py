"""Every entry point scores a model with its own feature list (issue 22, item 3).

The champion of the trained slice was trained with `visib`; then params drop it, add
`day_of_month`, and a challenger is registered on the new list. Nightly scoring, shadow
scoring, bulk scoring and the API each score every model with the columns it was trained on:
the scores equal the model's own `score_frame` on the same rows, and an input lacking a model's
column fails in one line naming the input, the model and the column.
"""

from __future__ import annotations

import json

import httpx
import mlflow
import numpy as np
import pandas as pd
import pytest
import torch
from helpers import DAY, running_api, set_params

from tasks.core.columns import MODEL_VERSION, SCORE
from tasks.core.config import Params, load_params
from tasks.core.layout import day_paths, online_parts
from tasks.core.tags import VARIANT
from tasks.model.featurize import Featurizer
from tasks.model.nets import NetConfig, TabularNet, save_model
from tasks.monitoring.drift import run_drift
from tasks.registry.aliases import registry_client
from tasks.registry.versions import log_and_register
from tasks.serving.bulk import score_parquet
from tasks.serving.champion import (
    Champion,
    MissingFeaturesError,
    load_version,
    resolve_champion,
    score_frame,
)
from tasks.serving.nightly import score_day, shadow_score

DROPPED = "visib"
ADDED = "day_of_month"  # a feature the upstream now delivers, added to params


def _change_params(params: Params) -> Params:
    """params.yaml without one numeric feature (and its rule) and with a new one, as a user
    would edit it."""
    dataset = params.model_dump(mode="json", by_alias=True)["dataset"]
    numeric = dataset["features"]["numeric"]
    numeric[numeric.index(DROPPED)] = ADDED
    set_params(params.file.parent, "dataset", **dataset)
    rules = params.validate_.model_dump(mode="json")["rules"]
    rules.pop(DROPPED)
    rules[ADDED] = {"min": 1, "max": 31, "nullable": False}
    set_params(params.file.parent, "validate", rules=rules)
    return load_params("params.yaml")


def _register_challenger(params: Params, rows: pd.DataFrame, folder) -> Champion:
    """A version fitted on params' list as it is now, holding the challenger alias. Its network
    is seeded, not trained: what is tested is which columns each model reads."""
    features = params.dataset.features
    featurizer = Featurizer.fit(rows, features.categorical, features.numeric, 5)
    torch.manual_seed(0)
    model = TabularNet(NetConfig.for_featurizer(featurizer, [16], 4, 0.0)).eval()
    save_model(model, featurizer, folder)
    name = params.registry.model_name
    with mlflow.start_run(run_name=f"trained without {DROPPED}"):
        version = log_and_register(
            folder, name, rows.head(5), {VARIANT: "student"}, params.tracking
        )
    registry_client(params).set_registered_model_alias(name, "challenger", version)
    return load_version(params, version)


def _records(params: Params, rows: pd.DataFrame, columns: list[str]) -> list[dict]:
    """Rows as a client sends them: ids, event time and `columns`, JSON-typed."""
    dataset = params.dataset
    wanted = [*dataset.id_columns, dataset.event_time, *columns]
    return json.loads(rows[wanted].to_json(orient="records", date_format="iso"))


def _own(model: Champion, rows: pd.DataFrame, params: Params) -> np.ndarray:
    return score_frame(model, rows, params.score.chunk_rows, where="rows")[0]


@pytest.fixture()
def changed(serving, tmp_path):
    """The promoted champion (trained with visib), params without visib and with a new
    day_of_month, a challenger trained on that list, and the day's incoming rows (written
    before the change, so visib is there; the upstream now adds day_of_month)."""
    incoming = day_paths(serving, DAY)["incoming"]
    rows = pd.read_parquet(incoming)
    rows[ADDED] = rows[serving.dataset.event_time].dt.day
    rows.to_parquet(incoming, index=False)
    params = _change_params(serving)
    champion = resolve_champion(params)
    challenger = _register_challenger(params, rows, tmp_path / "challenger")
    assert DROPPED in champion.featurizer.numeric and ADDED not in champion.featurizer.columns
    assert DROPPED not in challenger.featurizer.columns and ADDED in challenger.featurizer.numeric
    assert DROPPED not in params.dataset.features.names
    return params, champion, challenger, rows


def test_nightly_shadow_and_bulk_score_each_model_with_its_own_columns(changed, tmp_path):
    params, champion, challenger, rows = changed
    ids = params.dataset.id_columns
    paths = day_paths(params, DAY)

    summary = score_day(params, DAY, champion)
    assert summary["model_version"] == champion.version and summary["scored"] > 500
    served = rows.merge(pd.read_parquet(paths["predictions"])[[*ids, SCORE]], on=ids)
    np.testing.assert_allclose(served[SCORE], _own(champion, served, params), atol=1e-6)
    drift = run_drift(params, DAY, champion)  # the champion's reference predates day_of_month
    assert drift["not_in_reference"] == [ADDED] and DROPPED not in drift["columns"]

    shadow = shadow_score(params, DAY, champion, challenger)
    assert shadow is not None and shadow["challenger_version"] == challenger.version
    shadowed = served[ids].merge(pd.read_parquet(paths["shadow"]), on=ids)
    expected = _own(challenger, served.drop(columns=[DROPPED]), params)  # never reads visib
    assert not np.allclose(expected, _own(challenger, served.assign(**{ADDED: 1}), params))
    np.testing.assert_allclose(shadowed[SCORE], expected, atol=1e-6)

    for model in (champion, challenger):
        target = tmp_path / f"bulk-{model.version}.parquet"
        result = score_parquet(
            model, paths["incoming"], target, id_columns=ids, batch_rows=params.score.chunk_rows
        )
        assert result.rows == len(rows)
        bulk = pd.read_parquet(target)
        np.testing.assert_allclose(bulk[SCORE], _own(model, rows, params), atol=1e-6)

    # A batch from after a re-ingest: no visib. The challenger scores it; the champion cannot,
    # and every entry point says so in one line.
    lacking = tmp_path / "without-visib.parquet"
    rows.drop(columns=[DROPPED]).to_parquet(lacking, index=False)
    score_parquet(challenger, lacking, tmp_path / "ok.parquet", id_columns=ids, batch_rows=1000)
    rows.drop(columns=[DROPPED]).to_parquet(paths["incoming"], index=False)
    expected = (
        rf"lacks feature column\(s\) \['{DROPPED}'\] that {params.registry.model_name} "
        rf"v{champion.version} was trained on; add them"
    )
    for entry, source in (
        (lambda: score_day(params, DAY, champion), paths["incoming"]),
        (lambda: shadow_score(params, DAY, challenger, champion), paths["incoming"]),
        (
            lambda: score_parquet(
                champion, lacking, tmp_path / "no.parquet", id_columns=ids, batch_rows=1000
            ),
            lacking,
        ),
    ):
        with pytest.raises(MissingFeaturesError, match=expected) as error:
            entry()
        assert str(error.value).startswith(f"{source}: ") and "\n" not in str(error.value)
    assert not (tmp_path / "no.parquet").exists()


def test_the_api_serves_each_model_with_its_own_columns(changed):
    params, champion, challenger, rows = changed
    frame = rows.head(120)
    needed = [*champion.featurizer.columns, ADDED]  # the union of both models' lists
    with (
        running_api(params, shadow=False, canary_share=0.5) as url,
        httpx.Client(base_url=url) as client,
    ):
        reply = client.post("/v1/predict", json=_records(params, frame, needed))
        params_only = _records(params, frame.head(2), params.dataset.features.names)
        refused = client.post("/v1/predict", json=params_only)
    assert reply.status_code == 200
    answers = reply.json()["predictions"]
    versions = np.array([a["model_version"] for a in answers])
    assert set(versions) == {champion.version, challenger.version}  # both models answered
    for model in (champion, challenger):
        mine = versions == model.version
        got = [a["probability"] for a, m in zip(answers, mine, strict=True) if m]
        np.testing.assert_allclose(got, _own(model, frame[mine], params), atol=1e-5)
    # A client that follows params (no visib) is told what the served model still needs.
    assert refused.status_code == 422
    assert [a["error"] for a in refused.json()["predictions"]] == [
        f"missing column(s) {DROPPED}"
    ] * 2
    stored = pd.concat(pd.read_parquet(p) for p in online_parts(params.score.predictions_dir, DAY))
    assert sorted(stored[MODEL_VERSION].unique()) == sorted({champion.version, challenger.version})
