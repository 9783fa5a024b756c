"""Stage `evaluate`: the teacher and a HistGradientBoosting baseline on the same test days;
the baseline's scores are kept for the ensemble teacher the student is distilled from.

Every network is judged by `evaluate_network` (quality at the chosen threshold, latency per
batch including featurization, size, and the CPU seconds one scoring pass of the test days
took), so teacher, baseline and every student variant are comparable, in money too.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from tasks.core import tags as tag
from tasks.core.columns import EVENT_DATE
from tasks.core.config import CostConfig, EvaluateConfig, Params
from tasks.core.cost import Usage, measure
from tasks.core.io import write_metrics as write_metric_files
from tasks.core.layout import FEATURIZER_FILE, metrics_file
from tasks.core.metrics import classification_metrics, latency_profile
from tasks.data.split import Split, TrainingRecord, load_split, recency_weights
from tasks.model.baseline import baseline_matrix, baseline_model
from tasks.model.featurize import Featurizer
from tasks.model.nets import artifact_bytes, load_model, parameter_count
from tasks.model.predict import predict_proba
from tasks.registry import tracking
from tasks.registry.versions import describe_version, log_and_register
from tasks.training.ensemble import BaselineScores, time_folds

log = logging.getLogger(__name__)


# The figures people compare models by, in the order tables show them.
HEADLINE_METRICS = (
    "roc_auc",
    "pr_auc",
    "log_loss",
    "brier",
    "ece",
    "f1",
    "latency_ms_p95",
    "rows_per_s",
    "model_rows_per_s",
    "parameters",
    "artifact_bytes",
)


@dataclass(frozen=True)
class Evaluation:
    name: str
    metrics: dict[str, float]
    test_scores: np.ndarray
    validation_scores: np.ndarray


def choose_threshold(policy: float | str, y_val: np.ndarray, val_scores: np.ndarray) -> float:
    """A fixed threshold, or the one maximising F1 on the validation days (never the test)."""
    if not isinstance(policy, str):
        return float(policy)
    from sklearn.metrics import precision_recall_curve

    precision, recall, thresholds = precision_recall_curve(y_val, val_scores)
    f1 = 2 * precision * recall / np.maximum(precision + recall, 1e-12)
    return float(thresholds[int(np.argmax(f1[:-1]))])


def judge(
    name: str,
    split: Split,
    target: str,
    cfg: EvaluateConfig,
    val_scores: np.ndarray,
    test_scores: np.ndarray,
    predict_rows,
) -> Evaluation:
    """Quality on the test days at the validation-chosen threshold, plus batch latency."""
    y_val = split.validation[target].to_numpy()
    y_test = split.test[target].to_numpy()
    threshold = choose_threshold(cfg.threshold, y_val, val_scores)
    metrics = classification_metrics(y_test, test_scores, threshold, cfg.calibration_bins)
    metrics.update(
        latency_profile(
            predict_rows,
            len(split.test),
            min(cfg.latency_batch_size, len(split.test)),
            cfg.latency_repeats,
        )
    )
    metrics["threshold"] = threshold
    return Evaluation(name, metrics, test_scores, val_scores)


def evaluate_network(
    name: str, folder: Path, split: Split, target: str, cfg: EvaluateConfig
) -> Evaluation:
    model, featurizer = load_model(folder)
    test = split.test

    def predict_rows(start: int, stop: int) -> np.ndarray:
        return predict_proba(model, featurizer, test.iloc[start:stop])

    val_scores = predict_proba(model, featurizer, split.validation)  # also warms the model up
    test_scores, usage = timed_scoring(lambda: predict_proba(model, featurizer, test), cfg)
    evaluation = judge(name, split, target, cfg, val_scores, test_scores, predict_rows)
    evaluation.metrics.update(seconds_per_million(usage, len(test)))
    evaluation.metrics.update(_model_latency(model, featurizer, test, cfg))
    evaluation.metrics["parameters"] = parameter_count(model)
    evaluation.metrics["artifact_bytes"] = artifact_bytes(folder)
    evaluation.metrics["quantized"] = int(model.config.quantized)
    return evaluation


def timed_scoring(score: Callable[[], np.ndarray], cfg: EvaluateConfig) -> tuple[np.ndarray, Usage]:
    """The test days' scores and the cheapest of `evaluate.cost_passes` timed passes: one pass
    of a small model is tens of ms of CPU, which scheduler noise alone moves by 10-20 %."""
    best: Usage | None = None
    for _ in range(cfg.cost_passes):
        with measure() as meter:
            scores = score()
        if best is None or meter.usage.cpu_s < best.cpu_s:
            best = meter.usage
    assert best is not None  # cost_passes >= 1
    return scores, best


def seconds_per_million(usage: Usage, rows: int) -> dict[str, float]:
    """CPU, wall and GPU seconds per 1M predictions, from one timed scoring pass of `rows` raw
    rows (featurization included): what serving a variant costs, before prices."""
    scale = 1e6 / rows
    return {
        "cpu_s_per_million": usage.cpu_s * scale,
        "wall_s_per_million": usage.wall_s * scale,
        "gpu_s_per_million": usage.gpu_s * scale,
    }


def cost_per_million(metrics: dict[str, float], cfg: CostConfig) -> float:
    """Money per 1M predictions: the measured seconds per 1M at the prices in `cost`."""
    return Usage(cpu_s=metrics["cpu_s_per_million"], gpu_s=metrics["gpu_s_per_million"]).money(cfg)


def _model_latency(
    model, featurizer: Featurizer, frame: pd.DataFrame, cfg: EvaluateConfig
) -> dict[str, float]:
    """The network alone (forward on already-encoded batches): what distillation shrinks."""
    import torch

    encoded = featurizer.transform(frame)
    cats, nums = torch.from_numpy(encoded.categorical), torch.from_numpy(encoded.numeric)

    @torch.inference_mode()
    def forward(start: int, stop: int) -> object:
        return model(cats[start:stop], nums[start:stop])

    profile = latency_profile(
        forward, len(frame), min(cfg.latency_batch_size, len(frame)), cfg.latency_repeats
    )
    return {f"model_{k}": v for k, v in profile.items() if k != "batch_size"}


def _fit_baseline(
    params: Params, featurizer: Featurizer, split: Split, rows: np.ndarray | slice, end: dt.date
):
    """The baseline fitted on `rows` of the train days (recency-weighted when configured),
    stopped early on the validation days."""
    target = params.dataset.target.name
    train = split.train.iloc[rows]
    model = baseline_model(params.baseline, featurizer, params.train.seed)
    model.fit(
        baseline_matrix(featurizer, train),
        train[target].to_numpy(),
        sample_weight=recency_weights(train, end, params.train.half_life_days),
        X_val=baseline_matrix(featurizer, split.validation),
        y_val=split.validation[target].to_numpy(),
    )
    return model


def out_of_fold_scores(
    params: Params, featurizer: Featurizer, split: Split, end: dt.date
) -> np.ndarray:
    """The baseline's probability for every train row from a model fitted without that row's
    days (`baseline.out_of_fold` runs of consecutive days): soft targets a student can learn
    from without the baseline's in-sample overconfidence."""
    dates = pd.to_datetime(split.train[EVENT_DATE]).to_numpy()
    scores = np.empty(len(split.train))
    for held_out in time_folds(dates, params.baseline.out_of_fold):
        kept = np.setdiff1d(np.arange(len(split.train)), held_out)
        model = _fit_baseline(params, featurizer, split, kept, end)
        scores[held_out] = model.predict_proba(
            baseline_matrix(featurizer, split.train.iloc[held_out])
        )[:, 1]
    return scores


def evaluate_baseline(
    params: Params, featurizer: Featurizer, split: Split, end: dt.date
) -> tuple[Evaluation, BaselineScores]:
    """The baseline judged like every network, and its scores of each split for the ensemble
    teacher (out of fold on the train days)."""
    model = _fit_baseline(params, featurizer, split, slice(None), end)

    def scores(frame: pd.DataFrame) -> np.ndarray:
        return model.predict_proba(baseline_matrix(featurizer, frame))[:, 1]

    test = split.test
    val_scores = scores(split.validation)
    test_scores, usage = timed_scoring(lambda: scores(test), params.evaluate)
    evaluation = judge(
        "baseline",
        split,
        params.dataset.target.name,
        params.evaluate,
        val_scores,
        test_scores,
        lambda start, stop: scores(test.iloc[start:stop]),
    )
    evaluation.metrics.update(seconds_per_million(usage, len(test)))
    evaluation.metrics["iterations"] = int(model.n_iter_)
    saved = BaselineScores(
        out_of_fold_scores(params, featurizer, split, end), val_scores, test_scores
    )
    return evaluation, saved


def write_metrics(cfg: EvaluateConfig, evaluation: Evaluation, extra: dict | None = None) -> Path:
    return write_metric_files(
        metrics_file(cfg.metrics_dir, evaluation.name), {**evaluation.metrics, **(extra or {})}
    )


def write_plots(
    params: Params, split: Split, evaluations: list[Evaluation], folder: str
) -> list[Path]:
    from tasks.training.plots import evaluation_plots  # matplotlib: only when plotting

    y_test = split.test[params.dataset.target.name].to_numpy()
    curves = {e.name: (y_test, e.test_scores) for e in evaluations}
    out_dir = params.evaluate.plots_dir / folder
    return list(evaluation_plots(curves, out_dir, params.evaluate.calibration_bins).values())


def run_evaluate(params: Params) -> dict[str, dict]:
    """The stage: teacher vs baseline on the test days; registers the teacher in MLflow."""

    record = TrainingRecord.load(params.train.model_dir)
    split = load_split(params, record.window, record.windows)
    target = params.dataset.target.name
    teacher = evaluate_network("teacher", params.train.model_dir, split, target, params.evaluate)
    featurizer = Featurizer.load(params.train.model_dir / FEATURIZER_FILE)  # no second network load
    baseline, baseline_scores = evaluate_baseline(params, featurizer, split, record.window.end)
    baseline_scores.save(params.baseline.scores_path)
    plots = write_plots(params, split, [teacher, baseline], "evaluate")

    tracking.configure(params.tracking)
    tags = tracking.lineage_tags(params, record.data_fingerprint, record.parent_run_id)
    with tracking.resume_run(record.teacher_run_id):
        tracking.log_metrics(teacher.metrics, prefix="test_")
        for png in plots:
            import mlflow

            mlflow.log_artifact(str(png), artifact_path="plots")
        version = log_and_register(
            params.train.model_dir,
            params.registry.teacher_model_name,
            split.test.head(5),
            {
                **tags,
                tag.VARIANT: "teacher",
                tag.RUN_ID: record.teacher_run_id,
                tag.PARENT_RUN_ID: record.parent_run_id or "",
                tag.WINDOW: record.window.tag,
            },
            params.tracking,
        )
        describe_version(
            params,
            params.registry.teacher_model_name,
            version,
            f"the teacher (embeddings + MLP) of {params.dataset.name}",
            record,
        )
    with tracking.child_run(record.parent_run_id, "baseline", {**tags, tag.VARIANT: "baseline"}):
        import mlflow

        mlflow.log_params(tracking.flatten(params.baseline.model_dump(mode="json")))
        tracking.log_metrics(baseline.metrics, prefix="test_")
        baseline_file = write_metrics(params.evaluate, baseline)
        mlflow.log_artifact(str(baseline_file), artifact_path="metrics")
        for png in plots:
            mlflow.log_artifact(str(png), artifact_path="plots")

    write_metrics(params.evaluate, teacher, {"registry_version": int(version)})
    log.info(
        "evaluate: teacher AUC %.4f vs baseline %.4f on %s..%s",
        teacher.metrics["roc_auc"],
        baseline.metrics["roc_auc"],
        record.windows.test.start,
        record.windows.test.end,
    )
    return {"teacher": teacher.metrics, "baseline": baseline.metrics}
