"""The Prefect flow `inference`: one nightly batch, validated, scored by the champion."""

from __future__ import annotations

import datetime as dt

from prefect import flow, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NONE as NO_CACHE

from flows.common import IO_RETRIES
from tasks.config import Params, load_params


@task(name="resolve-champion", cache_policy=NO_CACHE, **IO_RETRIES)
def resolve_task(params: Params):
    from tasks.score import resolve_champion

    return resolve_champion(params)


@task(name="score-batch", cache_policy=NO_CACHE)
def score_task(params: Params, day: dt.date, champion) -> dict:
    from tasks.score import score_day

    return score_day(params, day, champion)


@flow(name="inference", log_prints=False)
def inference_flow(date: str, params_path: str = "params.yaml") -> dict:
    """Score the batch of `date` (YYYY-MM-DD) with the champion, resolved once for the run."""
    from tasks.score import parse_date

    day = parse_date(date)
    params = load_params(params_path)
    champion = resolve_task(params)
    summary = score_task(params, day, champion)
    create_markdown_artifact(
        key="nightly-scoring",
        markdown=(
            f"**{summary['date']}**: {summary['scored']:,} rows scored by "
            f"`{summary['model_name']}` v{summary['model_version']}, "
            f"{summary['quarantined']:,} quarantined; predicted positive rate "
            f"{summary['positive_rate_predicted']:.3f}. Predictions: `{summary['predictions']}`"
        ),
    )
    return summary
