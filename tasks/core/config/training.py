"""Config of making models: training, evaluation, baseline, distillation, the gate, the registry."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from tasks.core.config.base import AutoSize, Fraction, StrictModel
from tasks.core.config.data import DateWindow

# Below this, a step's gradient is mostly noise; a window this small has few steps in any case.
MIN_BATCH_ROWS = 32


class Schedule(StrictModel):
    """How a network is optimised: Adam with early stopping on the validation log loss."""

    batch_size: int = Field(ge=8)
    min_steps_per_epoch: int = Field(
        default=50,
        ge=1,
        description="a window too small for this many batches of batch_size trains on smaller "
        "batches (down to MIN_BATCH_ROWS), so a small data set still gets enough steps",
    )
    max_epochs: int = Field(ge=1)
    patience: int = Field(ge=1)
    learning_rate: float = Field(gt=0)
    weight_decay: float = Field(ge=0)

    def batch_rows(self, rows: int) -> int:
        """The batch size for `rows` training rows: batch_size, or less where batch_size would
        leave fewer than min_steps_per_epoch steps an epoch (25 rows a day over 60 days gave
        the teacher two steps an epoch: it stopped near chance where a gradient-boosted model
        of the same rows scored 0.77)."""
        return min(self.batch_size, max(MIN_BATCH_ROWS, -(-rows // self.min_steps_per_epoch)))


class FineTune(StrictModel):
    """The schedule of a warm start: it begins at the champion's optimum, not at random."""

    max_epochs: int = Field(ge=1)
    patience: int = Field(ge=1)
    lr_scale: float = Field(gt=0, description="the schedule's learning rate times this")


class NetShape(StrictModel):
    hidden: list[int] = Field(min_length=1)
    max_embedding_dim: int = Field(ge=1)
    dropout: Fraction


class TrainConfig(StrictModel):
    """The teacher and the time-based split of its window (train | validation | test)."""

    window: DateWindow
    max_window_days: int | None = Field(
        default=None,
        ge=7,
        description="with --until, at most this many days; null: every day from window.start",
    )
    half_life_days: float | None = Field(
        default=None,
        gt=0,
        description="recency weighting: a row this many days older than the window's end "
        "weighs half; null: every row weighs the same",
    )
    validation_days: AutoSize = Field(
        description="auto: the fewest days, at least min_validation_days, holding "
        "promote.evidence.min_rows rows and min_class_rows of each class in the leanest month"
    )
    test_days: AutoSize = Field(
        description="the holdout; auto: the fewest days, at least min_test_days, holding "
        "promote.evidence.min_rows rows and min_class_rows of each class in the leanest month"
    )
    min_validation_days: int = Field(ge=1, description="floor of validation_days: auto")
    min_test_days: int = Field(ge=1, description="floor of test_days: auto")
    seed: int
    threads: int = Field(ge=1)
    nproc: int = Field(
        default=1, ge=1, description="teacher training processes; > 1: DDP under torchrun"
    )
    ddp_timeout_s: int = Field(
        default=120, ge=10, description="a rank waits this long for the others before failing"
    )
    min_category_count: int = Field(ge=1)
    net: NetShape
    schedule: Schedule
    warm_start: bool = Field(
        default=False,
        description="start the teacher from the champion's teacher when the features and the "
        "net shape match; otherwise (or without a champion) from scratch, saying why",
    )
    fine_tune: FineTune | None = Field(
        default=None, description="the schedule of a warm start; null: `schedule` as it is"
    )
    model_dir: Path
    checkpoint_dir: Path


class EvaluateConfig(StrictModel):
    threshold: float | Literal["max_f1"] = Field(
        description="a fixed score threshold, or max_f1: the F1-optimal one on the validation days"
    )
    calibration_bins: AutoSize = Field(
        description="equal-width bins of the ECE; auto: as many as the holdout fills with "
        "min_bin_rows rows each, 2 to max_calibration_bins"
    )
    min_bin_rows: int = Field(ge=1, description="rows per bin calibration_bins: auto aims at")
    max_calibration_bins: int = Field(ge=2)
    latency_batch_size: int = Field(ge=1)
    latency_repeats: int = Field(ge=1)
    cost_passes: int = Field(ge=1, description="timed scoring passes of the test; cheapest wins")
    metrics_dir: Path
    plots_dir: Path

    @model_validator(mode="after")
    def _threshold_in_range(self) -> EvaluateConfig:
        if isinstance(self.threshold, float) and not 0.0 < self.threshold < 1.0:
            raise ValueError("threshold must be in (0, 1) or 'max_f1'")
        return self


class BaselineConfig(StrictModel):
    """scikit-learn HistGradientBoosting on the same split: the bar the networks must meet."""

    max_iter: int = Field(ge=1)
    learning_rate: float = Field(gt=0)
    max_leaf_nodes: int = Field(ge=2)
    min_samples_leaf: int = Field(ge=1)
    l2_regularization: float = Field(ge=0)
    n_iter_no_change: int = Field(ge=1)
    out_of_fold: int = Field(
        ge=2,
        description="runs of consecutive train days: the soft targets on each come from "
        "a baseline fitted without it",
    )
    scores_path: Path


VARIANTS = ("teacher", "student", "student_int8", "student_pruned", "student_pruned_int8")
Variant = Literal["teacher", "student", "student_int8", "student_pruned", "student_pruned_int8"]


class PruneConfig(StrictModel):
    """Magnitude pruning of the student's hidden units, then a short fine-tune."""

    sparsity: float = Field(gt=0.0, lt=1.0, description="share of each hidden layer's units cut")
    finetune_epochs: int = Field(ge=0)


class DistillConfig(StrictModel):
    """The student: a small net trained on the teacher's soft targets plus the hard labels."""

    temperature: float = Field(gt=0)
    alpha: Fraction = Field(description="weight of the soft-target loss; 1 - alpha on labels")
    net: NetShape
    schedule: Schedule
    warm_start: bool = Field(
        default=False, description="start the student from the champion's fp32 student"
    )
    fine_tune: FineTune | None = Field(
        default=None, description="the schedule of a warm start; null: `schedule` as it is"
    )
    prune: PruneConfig
    candidate: Variant
    teacher: Literal["ensemble", "network"] = Field(
        description="what the student learns from: ensemble, the network teacher and the "
        "baseline blended with a weight fitted on the validation days; network, the network alone"
    )
    calibration: Literal["platt", "temperature", "none"] = Field(
        description="fitted on the validation days (the freshest labelled days before the test "
        "days) and folded into each student's output layer, so every path serves it"
    )
    calibration_level_days: int = Field(
        ge=1,
        description="platt's shift is refitted on this many freshest labelled days before the "
        "test days (at least the validation days): the base rate the scores aim at",
    )
    model_dir: Path
    int8_dir: Path
    pruned_dir: Path
    pruned_int8_dir: Path
    checkpoint_dir: Path


class SelectConfig(StrictModel):
    """Which variant of a training run is registered as the candidate."""

    policy: Literal["fixed", "cheapest_within"] = Field(
        description="fixed: distill.candidate; cheapest_within: among variants within "
        "auc_tolerance of the best test AUC, the cheapest per 1M predictions, measured costs "
        "within cost_tie_ratio of the cheapest counting as a tie (fewest parameters, then "
        "fewest bytes win): one answer for one data set and seed"
    )
    auc_tolerance: float = Field(ge=0.0, le=1.0)
    cost_tie_ratio: float = Field(ge=1.0)


class EvidenceConfig(StrictModel):
    """When a holdout can tell two models apart: a paired bootstrap of their AUC difference."""

    resamples: int = Field(ge=100)
    confidence: float = Field(gt=0.5, lt=1.0)
    seed: int
    min_rows: int = Field(ge=1)
    min_class_rows: int = Field(ge=1, description="rows of each class, positives and negatives")
    max_interval_width: float = Field(gt=0.0)


class TimingConfig(StrictModel):
    """Latency of candidate and champion, measured in turns in one process."""

    rounds: int = Field(ge=1)
    max_latency_ratio: float = Field(ge=1.0)


class PromoteConfig(StrictModel):
    """The gate a candidate must pass to become champion (see docs/architecture.md, "Promotion")."""

    select: SelectConfig
    evidence: EvidenceConfig
    timing: TimingConfig

    min_auc: Fraction = Field(description="absolute floor, binding the first model only")
    max_auc_drop: float = Field(ge=0)
    min_teacher_auc_share: Fraction
    max_latency_ms_p95: float = Field(gt=0, description="absolute ceiling, a safety net")
    max_artifact_bytes: int = Field(gt=0)
    max_ece: Fraction = Field(description="absolute bound, binding the first model only")
    max_ece_increase: float = Field(ge=0, description="later: ECE <= champion's + this")
    audit_days: int = Field(ge=1, description="days after a decision its audit scores")
    allow_teacher: bool
    history_db: Path
    decision_path: Path


class RegistryConfig(StrictModel):
    model_name: str = Field(min_length=1)
    teacher_model_name: str = Field(min_length=1)


class TrackingConfig(StrictModel):
    """Where MLflow writes; MLFLOW_TRACKING_URI in the environment overrides `uri`."""

    uri: str
    artifact_root: Path
    experiment: str
    retries: int = Field(ge=0, le=10, description="retries of a call the store refused for a while")
    backoff_seconds: float = Field(gt=0, le=60, description="first wait; doubles each retry")

    @model_validator(mode="after")
    def _no_credentials(self) -> TrackingConfig:
        if re.match(r"^[a-z][a-z0-9+.-]*://[^/@]*:[^/@]*@", self.uri, re.IGNORECASE):
            raise ValueError(
                "holds a password: params.yaml is committed; set MLFLOW_TRACKING_URI, or "
                "MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD, in the environment"
            )
        return self
