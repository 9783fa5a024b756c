"""Config of running the loop: scoring, Dask, drift, retraining, replay, schedules, cost."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from tasks.core.config.base import AutoCount, AutoSize, Fraction, StrictModel

SCHEDULER_ADDRESS = re.compile(r"(tcp|tls|ucx|ws|wss)://[^\s:/]+:\d{1,5}")


class DaskConfig(StrictModel):
    """Where `score.runner: dask` sends the days: an existing scheduler, or a LocalCluster."""

    address: str | None = Field(
        description="a running scheduler, e.g. tcp://10.0.0.5:8786 (then no LocalCluster)"
    )
    workers: int = Field(ge=1, le=256, description="LocalCluster worker processes")
    threads_per_worker: int = Field(ge=1, le=64)

    @model_validator(mode="after")
    def _address_form(self) -> DaskConfig:
        if self.address is not None and not SCHEDULER_ADDRESS.fullmatch(self.address):
            raise ValueError(
                f"address {self.address!r} is not a scheduler address; expected "
                "tcp://HOST:PORT (e.g. tcp://10.0.0.5:8786), or null for a LocalCluster"
            )
        return self


class ScoreConfig(StrictModel):
    """The nightly batch: where it arrives, where scores go, how much bad data it may hold."""

    incoming_dir: Path
    labels_dir: Path
    predictions_dir: Path
    quarantine_dir: Path
    shadow: bool = Field(description="also score each batch with the challenger, never served")
    shadow_dir: Path
    lock_dir: Path  # one lock per batch day; kept out of the output folders
    chunk_rows: int = Field(ge=1)
    max_bad_fraction: Fraction
    max_unseen_fraction: Fraction = Field(
        description="a categorical with a larger share of values never seen in training fails "
        "the batch (a recoding upstream) instead of scoring it all through the unseen bucket"
    )
    min_rows: int = Field(ge=1)
    empty_columns: Literal["score", "fail"] = Field(
        description="a nullable feature with no value at all in a batch: score it on the "
        "training median and its missing-value indicator, warned and counted (score), or fail "
        "the batch (fail)"
    )
    runner: Literal["local", "dask"] = Field(
        description="local: days scored one after another in this process; dask: days fanned "
        "out over a Dask cluster (needs a Prefect server, PREFECT_API_URL)"
    )
    dask: DaskConfig


class DriftConfig(StrictModel):
    """Evidently checks of each nightly batch against the champion's reference sample."""

    reference_rows: int = Field(ge=100)
    max_rows: int = Field(ge=100, description="current rows above this are sampled (logged)")
    window_days: AutoSize = Field(
        description="trailing days with data compared at once; auto: the fewest, at least "
        "min_days, holding min_window_rows rows in the data's leanest month"
    )
    performance_days: AutoSize = Field(
        description="labelled days with data the live AUC is measured on; auto: the fewest, "
        "at least min_days, holding promote.evidence.min_rows and min_class_rows of each class"
    )
    min_days: int = Field(ge=1, description="floor of window_days and performance_days: auto")
    min_window_rows: int = Field(ge=1, description="rows an auto drift window holds")
    report_dir: Path
    experiment: str
    seed: int


class RetrainConfig(StrictModel):
    """When the loop retrains: the policy's trigger, unless the cooldown or too few new labels
    block it."""

    mode: Literal["inline", "event"]
    policy: Literal["cost_aware", "threshold", "calendar", "never"] = Field(
        description="cost_aware: when the probe finds the labels since the champion's window "
        "worth a real AUC gain worth more than a retrain costs; threshold: any drift or AUC-drop "
        "trigger; calendar: the first tick of each month; never"
    )
    probe_days: int = Field(ge=1, description="newest labelled days the cost-aware probe scores")
    min_gain: float = Field(
        ge=0, description="the least AUC gain the cost-aware probe must find to retrain"
    )
    max_drift_share: Fraction
    max_prediction_drift: float = Field(gt=0)
    max_auc_drop: float = Field(gt=0)
    cooldown_days: int = Field(ge=0)
    min_new_labelled_rows: AutoCount = Field(
        description="auto: min_new_labelled_days days' rows in the data's leanest month"
    )
    min_new_labelled_days: int = Field(ge=0)
    state_path: Path
    runs_dir: Path = Field(
        description="each retrain of the loop writes its models and reports under "
        "runs_dir/until-D/, leaving the pipeline's (DVC's) outputs alone"
    )


class ReplayConfig(StrictModel):
    """The simulation clock (`loopline replay`, `make demo`) and its comparison models."""

    cadence_days: int = Field(
        ge=1,
        description="days per tick: scored one by one, drift and "
        "the retrain decision once per tick",
    )
    oracle: bool = Field(description="also score with a model retrained monthly on every label")
    oracle_net: Literal["teacher", "student"] = Field(
        description="which network recipe the oracle trains (hard labels, all data so far)"
    )
    summary_dir: Path


class ScheduleConfig(StrictModel):
    """`loopline serve`: cron strings (UTC) for the nightly scoring and the fallback retrain."""

    inference_cron: str
    training_cron: str


class ProductionVolume(StrictModel):
    """The volume a model's lifetime cost is projected at."""

    rows_per_night: int = Field(gt=0)
    nights_per_model_life: int = Field(gt=0)
    value_per_auc_point: float = Field(
        ge=0, description="money 0.01 of AUC is worth per 1M predictions (the cost-aware policy)"
    )


class CostConfig(StrictModel):
    """Prices that turn measured seconds into money. The seconds are always measured on the
    run that reports them; only the prices are assumptions, and they are yours to set."""

    currency: str = Field(min_length=1)
    cpu_hour: float = Field(ge=0, description="price of one CPU core busy for an hour")
    gpu_hour: float = Field(ge=0, description="price of one GPU busy for an hour")
    production: ProductionVolume
    ledger_path: Path


class ApiConfig(StrictModel):
    """`loopline api`: the model behind an alias over HTTP, requests batched together."""

    host: str = Field(min_length=1, description="the address it listens on (loopback by default)")
    port: int = Field(ge=1, le=65535)
    alias: Literal["champion", "challenger"] = Field(description="the alias served")
    max_batch_rows: int = Field(ge=1, description="rows scored together in one forward pass")
    max_wait_ms: float = Field(ge=0, description="how long a batch waits for more requests")
    max_queue_requests: int = Field(ge=1, description="queued requests; beyond: 503")
    max_request_rows: int = Field(ge=1)
    max_body_bytes: int = Field(ge=1024)
    poll_seconds: float = Field(gt=0, description="how often the alias is read again")
    shadow: bool = Field(description="the challenger also scores each request, never answered")
    canary_share: Fraction = Field(description="share of ids the challenger answers (sticky)")
    flush_rows: int = Field(ge=1, description="online predictions buffered before a file")
    flush_seconds: float = Field(gt=0)
    torch_threads: int = Field(
        ge=1, le=256, description="torch threads of the scoring thread; the rest run the event loop"
    )
    inline_rows: int = Field(
        ge=0, description="a lone request of at most this many rows is scored on the event loop"
    )
    load_retry_seconds: float = Field(
        gt=0, description="first wait before a version that failed to load is tried again"
    )
    load_retry_max_seconds: float = Field(gt=0, description="the wait doubles up to this")

    @model_validator(mode="after")
    def _retry_order(self) -> ApiConfig:
        if self.load_retry_max_seconds < self.load_retry_seconds:
            raise ValueError(
                f"load_retry_max_seconds {self.load_retry_max_seconds:g} is under "
                f"load_retry_seconds {self.load_retry_seconds:g}; make it at least as long"
            )
        return self
