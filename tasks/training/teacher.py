"""Stage `train`: the teacher network on the training window of validated data.

Reads `validate.validated_dir` for the window, splits it by time, fits the featurizer on the
train days only, trains with early stopping on the validation days and writes the model folder
plus `training.json` (windows, fingerprint, history, MLflow run ids) for the later stages.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import json
import logging
import warnings

import numpy as np
import pandas as pd

from tasks.core import tags as tag
from tasks.core.config import Params
from tasks.core.io import fingerprint, write_json
from tasks.core.layout import training_record
from tasks.data.split import (
    Split,
    load_split,
    recency_weights,
    split_windows,
    training_window,
)
from tasks.model.featurize import Featurizer
from tasks.model.nets import parameter_count, save_model
from tasks.registry import tracking
from tasks.training import warm
from tasks.training.ddp import launch, rank_threads
from tasks.training.loop import Distributed, TrainingData, fit, run_key, seed_everything

log = logging.getLogger(__name__)

SCHEMA_SAMPLE_ROWS = 1000  # rows MLflow reads to record a training window's schema


def encode(
    featurizer: Featurizer,
    frame: pd.DataFrame,
    target: str,
    teacher_logits: np.ndarray | None = None,
    weights: np.ndarray | None = None,
) -> TrainingData:
    return TrainingData.from_encoded(
        featurizer.transform(frame), frame[target].to_numpy(), teacher_logits, weights
    )


def run_train(
    params: Params, until: dt.date | None = None, parent_run_id: str | None = None
) -> dict:
    """The stage. Without `parent_run_id` (e.g. under DVC) it opens the parent MLflow run. With
    `train.nproc` > 1 the teacher trains on that many processes under torchrun."""
    if params.train.nproc == 1:
        return train_teacher(params, until, parent_run_id)
    launch(params, until, parent_run_id)
    return json.loads(training_record(params.train.model_dir).read_text(encoding="utf-8"))


def train_teacher(
    params: Params,
    until: dt.date | None,
    parent_run_id: str | None,
    distributed: Distributed | None = None,
) -> dict:
    """Fit and write the teacher. Under DDP every rank calls this; only rank 0 talks to MLflow
    and writes files, and it alone returns the record."""
    cfg, target = params.train, params.dataset.target.name
    window = training_window(cfg, until)
    windows = split_windows(window, cfg.validation_days, cfg.test_days)
    split = load_split(params, window, windows)
    data_fp = fingerprint(pd.concat([split.train, split.validation, split.test]))

    featurizer = Featurizer.fit(
        split.train,
        params.dataset.features.categorical,
        params.dataset.features.numeric,
        cfg.min_category_count,
    )
    seed_everything(cfg.seed, rank_threads(cfg))
    # Under DDP every rank reads the champion: all must start from the same net and schedule.
    begin = warm.start(params, "teacher", featurizer, cfg.net)
    weights = recency_weights(split.train, window.end, cfg.half_life_days)
    train_data = encode(featurizer, split.train, target, weights=weights)
    val_data = encode(featurizer, split.validation, target)

    key = run_key(cfg.model_dump_json(), featurizer.to_json(), data_fp, begin.tag)
    teacher_fit = functools.partial(
        fit,
        begin.model,
        train_data,
        val_data,
        begin.schedule(cfg.schedule, cfg.fine_tune),
        seed=cfg.seed,
        checkpoint_dir=cfg.checkpoint_dir,
        key=key,
        name="teacher",
        distributed=distributed,
    )
    if distributed is not None and not distributed.is_main:
        teacher_fit()
        return {}

    # A parent this stage opens (under `dvc repro`) ends FAILED when the stage fails; one
    # handed in belongs to the flow, which ends it.
    owned = contextlib.ExitStack()
    if parent_run_id is None:
        parent_run_id = tracking.start_parent(params, tracking.parent_run_name(window.end), {})
        owned.enter_context(tracking.failing_parent(params.tracking, parent_run_id))
    else:
        tracking.configure(params.tracking)
    with owned:
        tags = tracking.lineage_tags(params, data_fp, parent_run_id)
        datasets = training_datasets(params, split)
        _describe_parent(params, parent_run_id, data_fp, window.tag, datasets)
        world_size = 1 if distributed is None else distributed.world_size
        run_tags = {**tags, tag.VARIANT: "teacher", tag.WARM_START: begin.tag}
        with tracking.child_run(parent_run_id, "teacher", run_tags) as run:
            import mlflow

            mlflow.log_params(tracking.flatten(cfg.model_dump(mode="json")))
            for dataset, context in datasets:
                mlflow.log_input(dataset, context=context)
            result = teacher_fit(on_epoch=_log_epoch)
            save_model(result.model, featurizer, cfg.model_dir)
            summary = {
                "parameters": parameter_count(result.model),
                "best_epoch": result.best_epoch,
                "epochs_run": len(result.history),
                "train_seconds": result.seconds,
                "train_samples_per_s": result.samples_per_s,
                "threads": rank_threads(cfg),
                "world_size": world_size,
            }
            tracking.log_metrics(summary)
            teacher_run_id = run.info.run_id

        record = {
            "window": {"start": str(window.start), "end": str(window.end)},
            "windows": windows.as_dict(),
            "rows": {
                "train": len(split.train),
                "validation": len(split.validation),
                "test": len(split.test),
            },
            "data_fingerprint": data_fp,
            "history": result.history,
            "resumed_from_epoch": result.resumed_from_epoch,
            "warm_start": begin.tag,
            "mlflow": {"parent_run_id": parent_run_id, "teacher_run_id": teacher_run_id},
            **summary,
        }
        write_json(training_record(cfg.model_dir), record)
        log.info(
            "teacher: %d params, best epoch %d of %d, %.0f samples/s → %s",
            summary["parameters"],
            result.best_epoch,
            len(result.history),
            result.samples_per_s,
            cfg.model_dir,
        )
        return record


def _log_epoch(record: dict) -> None:
    import mlflow

    step = record["epoch"]
    mlflow.log_metrics(
        {
            "train_loss": record["train_loss"],
            "val_log_loss": record["val_log_loss"],
            "epoch_samples_per_s": record["samples_per_s"],
        },
        step=step,
    )


def _describe_parent(
    params: Params, parent_run_id: str, data_fp: str, window: str, datasets: list
) -> None:
    """What the parent learns once the data is read: its fingerprint, window and datasets."""
    client = tracking.client(params.tracking)
    client.set_tag(parent_run_id, tag.DATA_FINGERPRINT, data_fp)
    client.set_tag(parent_run_id, tag.WINDOW, window)
    tracking.log_datasets(params.tracking, parent_run_id, datasets)


def training_datasets(params: Params, split: Split) -> list[tuple[object, str]]:
    """The exact train, validation and test windows as MLflow datasets (with digests), each with
    its context, for lineage: logged on the teacher, on the parent and on the run that
    registers the candidate."""
    import mlflow
    from mlflow.models import infer_signature

    target = params.dataset.target.name
    datasets = []
    for name, frame, context in (
        ("train", split.train, "training"),
        ("validation", split.validation, "validation"),
        ("test", split.test, "testing"),
    ):
        w = getattr(split.windows, name)
        with warnings.catch_warnings():  # a folder path matches two equal local source kinds
            warnings.filterwarnings("ignore", message=".*interpreted in multiple ways")
            # and the schema hint about integer columns: the featurizer imputes missing values
            warnings.filterwarnings("ignore", message=".*integer column", category=UserWarning)
            dataset = mlflow.data.from_pandas(
                frame,
                source=str(params.validate_.validated_dir),
                targets=target,
                name=f"{params.dataset.name}-{name}-{w.start}..{w.end}",
            )
            # MLflow infers the schema value by value (≈3 s a retrain on 100k rows); the
            # contract has fixed every column's type, so a sample gives the same schema.
            dataset.__dict__["schema"] = infer_signature(frame.head(SCHEMA_SAMPLE_ROWS)).inputs
        datasets.append((dataset, context))
    return datasets
